-- SR-01 … SR-06 and SR-16 (metrics.md §3.1, §3.3): ASQ-3 at the 2–2½ year review, one
-- review per child per period (the earliest; ties: the lowest questionnaire), each domain
-- at or above its cut-off (score ≥ cut-off); by residence at the review date, deprivation,
-- sex, ethnicity group and centre engagement before the review.
with cutoffs as (
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
    from stg_periods as pr
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
),

-- One row per review and measure: `ok` is null when the domain was not scored.
measures as (
    select *, 'SR-01' as metric_id, communication_ok as ok from facts
    union all
    select *, 'SR-02' as metric_id, gross_motor_ok as ok from facts
    union all
    select *, 'SR-03' as metric_id, fine_motor_ok as ok from facts
    union all
    select *, 'SR-04' as metric_id, problem_solving_ok as ok from facts
    union all
    select *, 'SR-05' as metric_id, personal_social_ok as ok from facts
    union all
    select
        *,
        'SR-06' as metric_id,
        case
            when communication_ok is null or gross_motor_ok is null or fine_motor_ok is null
                or problem_solving_ok is null or personal_social_ok is null then null
            else communication_ok and gross_motor_ok and fine_motor_ok
                and problem_solving_ok and personal_social_ok
        end as ok
    from facts
),

placed as (
    select 'deployment' as geography_type, 'ALL' as geography_code, * from measures
    union all
    select 'la' as geography_type, la_code as geography_code, * from measures
    union all
    select 'reach_area' as geography_type, reach_area as geography_code, * from measures where reach_area is not null
    union all
    select 'eh_area' as geography_type, eh_area as geography_code, * from measures where eh_area is not null
    union all
    select 'lot' as geography_type, lot as geography_code, * from measures where lot is not null
),

broken_down as (
    select 'all' as breakdown_type, 'all' as breakdown_value, * from placed
    union all
    select 'deprivation' as breakdown_type, deprivation_band as breakdown_value, * from placed
    union all
    select 'sex' as breakdown_type, sex as breakdown_value, * from placed
    union all
    select 'ethnicity_group' as breakdown_type, ethnicity_group as breakdown_value, * from placed
    union all
    select 'engagement' as breakdown_type, engagement as breakdown_value, * from placed
),

-- SR-16: all five domains, children with sustained engagement before the review against
-- all other children, overall and within deprivation strata.
engagement_gap as (
    select
        'SR-16' as metric_id,
        period_type,
        period_start,
        period_end,
        geography_type,
        geography_code,
        breakdown_type,
        breakdown_value,
        count(*) filter (where ok and engagement = 'sustained') as numerator,
        count(ok) filter (where engagement = 'sustained') as denominator,
        count(*) filter (where ok and engagement <> 'sustained') as comparison_numerator,
        count(ok) filter (where engagement <> 'sustained') as comparison_denominator
    from broken_down
    where metric_id = 'SR-06' and breakdown_type in ('all', 'deprivation')
    group by
        period_type, period_start, period_end,
        geography_type, geography_code, breakdown_type, breakdown_value
)

select
    metric_id,
    period_type,
    period_start,
    period_end,
    geography_type,
    geography_code,
    breakdown_type,
    breakdown_value,
    count(*) filter (where ok) as numerator,
    count(ok) as denominator,
    cast(null as bigint) as comparison_numerator,
    cast(null as bigint) as comparison_denominator,
    '' as quality_flags
from broken_down
group by
    metric_id, period_type, period_start, period_end,
    geography_type, geography_code, breakdown_type, breakdown_value
union all
select
    metric_id,
    period_type,
    period_start,
    period_end,
    geography_type,
    geography_code,
    breakdown_type,
    breakdown_value,
    numerator,
    denominator,
    comparison_numerator,
    comparison_denominator,
    'association_not_effect'
from engagement_gap
