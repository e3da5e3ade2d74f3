-- One ASQ-3 review per child per period (metrics.md §1.4 reading 7: the earliest of the
-- configured intervals; ties: the lowest questionnaire), each domain compared with its
-- cut-off (null = not scored), with the child's residence at the review date, sex,
-- ethnicity group and centre engagement before the review.
--
-- Only the periods ending on or after recompute_from(): an incremental build keeps the
-- earlier ones (every period in a full build; see [incremental] in sql/metrics.toml).
with scoped_periods as (
    select pr.*
    from stg_periods as pr
    where pr.period_end >= recompute_from()
),

cutoffs as (
    select
        questionnaire_months,
        max(case when domain = 'communication' then cutoff end) as communication,
        max(case when domain = 'gross_motor' then cutoff end) as gross_motor,
        max(case when domain = 'fine_motor' then cutoff end) as fine_motor,
        max(case when domain = 'problem_solving' then cutoff end) as problem_solving,
        max(case when domain = 'personal_social' then cutoff end) as personal_social
    from ref_asq3_cutoffs
    group by questionnaire_months
),

in_period as (
    select
        pr.period_type,
        pr.period_start,
        pr.period_end,
        a.*,
        row_number() over (
            partition by pr.period_type, pr.period_end, a.child_key
            order by a.review_date, a.questionnaire_months
        ) as pick
    from scoped_periods as pr
    inner join stg_asq3_reviews as a
        on a.review_date between pr.period_start and pr.period_end
    where pr.period_type in ('quarter', 'fy')
),

domains as (
    select
        r.period_type,
        r.period_start,
        r.period_end,
        r.child_key,
        r.review_date,
        r.communication >= cut.communication as communication_ok,
        r.gross_motor >= cut.gross_motor as gross_motor_ok,
        r.fine_motor >= cut.fine_motor as fine_motor_ok,
        r.problem_solving >= cut.problem_solving as problem_solving_ok,
        r.personal_social >= cut.personal_social as personal_social_ok
    from in_period as r
    inner join cutoffs as cut on cut.questionnaire_months = r.questionnaire_months
    where r.pick = 1
),

first_registration as (
    select
        child_key,
        min(registration_date) as first_registration_date
    from stg_registered_children
    group by child_key
),

facts as (
    select
        d.*,
        coalesce(c.sex, 'unknown') as sex,
        coalesce(c.ethnicity_group, 'Unknown') as ethnicity_group,
        res.reach_area,
        res.eh_area,
        res.lot,
        coalesce(res.la_code, 'UNKNOWN') as la_code,
        coalesce(res.deprivation_band, 'unknown') as deprivation_band,
        case
            when e.first_sustained_date < d.review_date then 'sustained'
            when reg.first_registration_date <= d.review_date then 'registered_not_sustained'
            else 'not_registered_or_unlinked'
        end as engagement
    from domains as d
    left join stg_children as c on c.child_key = d.child_key
    left join stg_residence as res on res.child_key = d.child_key and res.as_of = d.review_date
    left join stg_child_engagement as e on e.child_key = d.child_key
    left join first_registration as reg on reg.child_key = d.child_key
)

select * from facts
