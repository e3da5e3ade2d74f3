-- Every metric value in the layout of metrics.md §1.3: the value with its confidence
-- interval (Wilson for percentages, Byar's / exact Poisson for counts and rates, Newcombe
-- for differences, mean ± z·s/√n for means), compared with the value for the whole deployment (the LA) for the same
-- metric, period and breakdown, and the whole deployment with the England value where
-- one is published (reference/comparators.csv). Suppression is applied when a report is rendered, per
-- audience (disclosure.md), so the policy here is `none`.
with params as (
    select * from metric_params
),

rows_in as (
    select r.*
    from (
        select * from reach
        union all
        select * from school_readiness_asq3
        union all
        select * from school_readiness_eyfsp
        union all
        select * from social_care
        union all
        select * from early_help
        union all
        select * from health_visiting
        union all
        select * from data_quality
        union all
        select * from overlap
        union all
        select * from value_for_money
    ) as r
    -- only the periods this build recomputes (see [incremental] in sql/metrics.toml)
    where r.period_end >= recompute_from()
),

valued as (
    select
        r.*,
        cat.unit,
        cat.definition_version,
        case cat.unit
            when 'percent' then 100.0 * r.numerator / nullif(r.denominator, 0)
            when 'rate_per_10000' then 10000.0 * r.numerator / nullif(r.denominator, 0)
            when 'count' then cast(r.numerator as double)
            when 'mean' then cast(r.numerator as double) / nullif(r.denominator, 0)
            when 'difference_pts' then
                100.0 * (cast(r.numerator as double) / nullif(r.denominator, 0)
                    - cast(r.comparison_numerator as double) / nullif(r.comparison_denominator, 0))
            -- cost in pence over people: complete counts, so no interval (value-for-money.md §2)
            when 'gbp_per_person' then r.numerator / 100.0 / nullif(r.denominator, 0)
        end as value,
        case cat.unit
            when 'percent' then 100.0 * wilson_lower(r.numerator, r.denominator)
            when 'rate_per_10000' then
                10000.0 * poisson_lower(r.numerator) / nullif(r.denominator, 0)
            when 'count' then poisson_lower(r.numerator)
            -- means carry their sum of squares in comparison_numerator
            when 'mean' then mean_lower(r.denominator, r.numerator, r.comparison_numerator)
            when 'difference_pts' then 100.0 * newcombe_lower(
                r.numerator, r.denominator, r.comparison_numerator, r.comparison_denominator)
        end as lower_95,
        case cat.unit
            when 'percent' then 100.0 * wilson_upper(r.numerator, r.denominator)
            when 'rate_per_10000' then
                10000.0 * poisson_upper(r.numerator) / nullif(r.denominator, 0)
            when 'count' then poisson_upper(r.numerator)
            when 'mean' then mean_upper(r.denominator, r.numerator, r.comparison_numerator)
            when 'difference_pts' then 100.0 * newcombe_upper(
                r.numerator, r.denominator, r.comparison_numerator, r.comparison_denominator)
        end as upper_95,
        case
            when cat.unit = 'percent' and r.denominator > 0 then 'wilson'
            when cat.unit in ('count', 'rate_per_10000') and r.numerator >= 10 then 'byar'
            when cat.unit in ('count', 'rate_per_10000') and r.numerator >= 0 then 'exact_poisson'
            when cat.unit = 'mean' and r.denominator >= 2 then 'normal_mean'
            when cat.unit = 'difference_pts' and r.denominator > 0
                and r.comparison_denominator > 0 then 'newcombe'
            else 'none'
        end as ci_method,
        cat.uses_unverified
    from rows_in as r
    inner join metric_catalogue as cat on cat.metric_id = r.metric_id
),

-- Published England values (reference/comparators.csv) for the whole-deployment rows, by
-- financial year ('2024-25') or quarter ('2017-18 Q1').
england as (
    select
        c.metric_id,
        p.period_type,
        p.period_end,
        c.value
    from ref_comparators as c
    inner join (select distinct period_type, period_start, period_end from valued) as p
        on c.period = case p.period_type
            when 'fy' then concat(
                cast(extract(year from p.period_start) as varchar), '-',
                substr(cast(extract(year from p.period_start) + 1 as varchar), 3, 2))
            when 'quarter' then concat(
                cast(extract(year from p.period_start)
                    - case when extract(month from p.period_start) < 4 then 1 else 0 end
                    as varchar),
                '-',
                substr(cast(extract(year from p.period_start)
                    - case when extract(month from p.period_start) < 4 then 1 else 0 end + 1
                    as varchar), 3, 2),
                ' Q',
                cast(case
                    when extract(month from p.period_start) >= 4
                        then cast(floor((extract(month from p.period_start) - 4) / 3.0) as int) + 1
                    else 4
                end as varchar))
        end
),

la as (
    select
        metric_id,
        period_type,
        period_end,
        breakdown_type,
        breakdown_value,
        value as la_value
    from valued
    where geography_type = 'deployment'
)

select
    v.metric_id,
    v.definition_version,
    v.period_type,
    v.period_start,
    v.period_end,
    v.geography_type,
    v.geography_code,
    v.breakdown_type,
    v.breakdown_value,
    v.numerator,
    v.denominator,
    v.value,
    v.lower_95,
    v.upper_95,
    v.ci_method,
    case
        when la.la_value is not null then 'la'
        when eng.value is not null then 'england'
        else 'none'
    end as comparator_type,
    coalesce(la.la_value, eng.value) as comparator_value,
    case
        when coalesce(la.la_value, eng.value) is null or v.lower_95 is null
            or v.upper_95 is null then 'not_compared'
        when v.lower_95 > coalesce(la.la_value, eng.value) then 'significantly_higher'
        when v.upper_95 < coalesce(la.la_value, eng.value) then 'significantly_lower'
        else 'similar'
    end as comparison,
    p.population_source as denominator_source,
    p.deprivation_vintage,
    v.quality_flags,
    v.uses_unverified,
    'none' as disclosure_policy,
    run.run_id
from valued as v
cross join params as p
cross join metric_run as run
left join la
    on la.metric_id = v.metric_id
    and la.period_type = v.period_type
    and la.period_end = v.period_end
    and la.breakdown_type = v.breakdown_type
    and la.breakdown_value = v.breakdown_value
    and v.geography_type <> 'deployment'
left join england as eng
    on eng.metric_id = v.metric_id
    and eng.period_type = v.period_type
    and eng.period_end = v.period_end
    and v.geography_type = 'deployment'
    and v.breakdown_type = 'all'
