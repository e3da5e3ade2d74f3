-- SR-01 … SR-06 and SR-16 (metrics.md §3.1, §3.3) from int_asq3_facts: each domain at or
-- above its cut-off and all five together, by residence at the review date, deprivation,
-- sex, ethnicity group and engagement; SR-16 is the SR-06 gap between children with
-- sustained centre engagement before the review and all others (an association).
--
-- Only the periods ending on or after recompute_from(): an incremental build keeps the
-- earlier ones (every period in a full build; see [incremental] in sql/metrics.toml).
with asq3_facts as (
    select t.*
    from int_asq3_facts as t
    where t.period_end >= recompute_from()
),

measures as (
    select
        m.metric_id,
        f.*,
        case m.metric_id
            when 'SR-01' then f.communication_ok
            when 'SR-02' then f.gross_motor_ok
            when 'SR-03' then f.fine_motor_ok
            when 'SR-04' then f.problem_solving_ok
            when 'SR-05' then f.personal_social_ok
            when 'SR-06' then
                case
                    when f.communication_ok is null or f.gross_motor_ok is null
                        or f.fine_motor_ok is null or f.problem_solving_ok is null
                        or f.personal_social_ok is null then null
                    else f.communication_ok and f.gross_motor_ok and f.fine_motor_ok
                        and f.problem_solving_ok and f.personal_social_ok
                end
        end as ok
    from asq3_facts as f
    cross join (values ('SR-01'), ('SR-02'), ('SR-03'), ('SR-04'), ('SR-05'), ('SR-06'))
        as m(metric_id)
),

-- Counted first at the finest grain, then spread over the geographies and breakdowns.
fine as (
    select
        metric_id,
        period_type,
        period_start,
        period_end,
        la_code,
        reach_area,
        eh_area,
        lot,
        deprivation_band,
        sex,
        ethnicity_group,
        engagement,
        count(*) filter (where ok) as ok_reviews,
        count(ok) as scored
    from measures
    group by
        metric_id, period_type, period_start, period_end, la_code, reach_area, eh_area, lot,
        deprivation_band, sex, ethnicity_group, engagement
),

placed as (
    select
        g.geography_type,
        case g.geography_type
            when 'deployment' then 'ALL'
            when 'la' then m.la_code
            when 'reach_area' then m.reach_area
            when 'eh_area' then m.eh_area
            when 'lot' then m.lot
        end as geography_code,
        b.breakdown_type,
        case b.breakdown_type
            when 'all' then 'all'
            when 'deprivation' then m.deprivation_band
            when 'sex' then m.sex
            when 'ethnicity_group' then m.ethnicity_group
            when 'engagement' then m.engagement
        end as breakdown_value,
        m.*
    from fine as m
    cross join (values ('deployment'), ('la'), ('reach_area'), ('eh_area'), ('lot'))
        as g(geography_type)
    cross join (values ('all'), ('deprivation'), ('sex'), ('ethnicity_group'), ('engagement'))
        as b(breakdown_type)
),

counted as (
    select
        metric_id,
        period_type,
        period_start,
        period_end,
        geography_type,
        geography_code,
        breakdown_type,
        breakdown_value,
        sum(ok_reviews) as numerator,
        sum(scored) as denominator,
        sum(case when engagement = 'sustained' then ok_reviews else 0 end) as sustained_ok,
        sum(case when engagement = 'sustained' then scored else 0 end) as sustained_scored,
        sum(case when engagement <> 'sustained' then ok_reviews else 0 end) as others_ok,
        sum(case when engagement <> 'sustained' then scored else 0 end) as others_scored
    from placed
    where geography_code is not null
    group by
        metric_id, period_type, period_start, period_end,
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
    numerator,
    denominator,
    cast(null as bigint) as comparison_numerator,
    cast(null as bigint) as comparison_denominator,
    '' as quality_flags
from counted
union all
select
    'SR-16',
    period_type,
    period_start,
    period_end,
    geography_type,
    geography_code,
    breakdown_type,
    breakdown_value,
    sustained_ok,
    sustained_scored,
    others_ok,
    others_scored,
    'association_not_effect'
from counted
where metric_id = 'SR-06' and breakdown_type in ('all', 'deprivation')
