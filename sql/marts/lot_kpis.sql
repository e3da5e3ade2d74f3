-- Contract KPI performance per lot (value-for-money.md §4), from ref_contract_kpis (lot '*'
-- applies a KPI to every lot of the contracts extract) and the lot rows of metric_values:
-- each KPI's status per period end (met, near = misses by no more than its tolerance,
-- not_met, no_data), the lot's KPI-SCORE = Σ weight × score ÷ Σ weight over KPIs with data
-- × 100 (met 1, near 0.5, not met 0), and whether it met the extension condition
-- (KPI-SCORE ≥ 75 at each of the last 4 quarter ends).
with kpis as (
    select
        coalesce(c.lot, k.lot) as lot,
        k.kpi_id,
        k.metric_id,
        k.breakdown,
        k.direction,
        cast(k.target as double) as target,
        cast(k.tolerance as double) as tolerance,
        cast(k.weight as double) as weight,
        k.period_type
    from ref_contract_kpis as k
    left join (select distinct lot from contracts) as c on k.lot = '*'
    where k.lot <> '*' or c.lot is not null
),

-- The period ends of each KPI's period type (distinct first: joining every metric value
-- to every KPI before the distinct made this model take a second at county scale).
ends as (
    select distinct k.lot, k.kpi_id, p.period_end
    from kpis as k
    inner join (select distinct period_type, period_end from metric_values) as p
        on p.period_type = k.period_type
),

valued as (
    select
        e.lot,
        e.period_end,
        k.kpi_id,
        k.metric_id,
        k.breakdown,
        k.direction,
        k.target,
        k.tolerance,
        k.weight,
        v.value
    from ends as e
    inner join kpis as k on k.lot = e.lot and k.kpi_id = e.kpi_id
    left join metric_values as v
        on v.geography_type = 'lot'
        and v.geography_code = k.lot
        and v.metric_id = k.metric_id
        and v.period_type = k.period_type
        and v.period_end = e.period_end
        and (case when v.breakdown_type = 'all' then 'all'
             else concat(v.breakdown_type, '=', v.breakdown_value) end) = k.breakdown
),

statuses as (
    select
        *,
        case
            when value is null then 'no_data'
            when direction = 'higher' and value >= target then 'met'
            when direction = 'lower' and value <= target then 'met'
            when direction = 'higher' and value >= target - tolerance then 'near'
            when direction = 'lower' and value <= target + tolerance then 'near'
            else 'not_met'
        end as status
    from valued
),

scores as (
    select
        lot,
        period_end,
        100.0 * sum(weight * case status when 'met' then 1.0 when 'near' then 0.5 else 0.0 end)
            filter (where status <> 'no_data')
            / nullif(sum(weight) filter (where status <> 'no_data'), 0) as kpi_score,
        count(*) filter (where status <> 'no_data') as kpis_with_data,
        count(*) as kpis
    from statuses
    group by lot, period_end
),

-- The last four quarter ends up to each period end, by rank.
ranked as (
    select *, dense_rank() over (partition by lot order by period_end) as n
    from scores
),

extension as (
    select
        r.lot,
        r.period_end,
        count(*) as quarters,
        bool_and(p.kpi_score >= 75) as all_above
    from ranked as r
    inner join ranked as p on p.lot = r.lot and p.n between r.n - 3 and r.n
    group by r.lot, r.period_end
)

select
    s.lot,
    s.period_end,
    s.kpi_id,
    s.metric_id,
    s.breakdown,
    s.direction,
    s.target,
    s.tolerance,
    s.weight,
    s.value,
    s.status,
    sc.kpi_score,
    sc.kpis_with_data,
    coalesce(x.quarters = 4 and x.all_above, false) as meets_extension_condition
from statuses as s
inner join scores as sc on sc.lot = s.lot and sc.period_end = s.period_end
left join extension as x on x.lot = s.lot and x.period_end = s.period_end
