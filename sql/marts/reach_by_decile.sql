-- Under-fives, registered, seen and sustained by deprivation decile (1 = most deprived), per
-- fy and rolling window, for each reach area and the whole deployment: the decile bars of
-- the centre evaluations. Counts of children, so reports apply disclosure control to them.
--
-- Only the periods ending on or after recompute_from(): an incremental build keeps the
-- earlier ones (every period in a full build; see [incremental] in sql/metrics.toml).
with reach_facts as (
    select t.*
    from int_reach_facts as t
    where t.period_end >= recompute_from()
),

geographies as (
    select * from (values ('deployment'), ('reach_area')) as g(geography_type)
),

fine as (
    select
        period_type,
        period_start,
        period_end,
        reach_area,
        coalesce(cast(deprivation_decile as varchar), 'unknown') as decile,
        count(*) as children,
        count(*) filter (where is_registered) as registered,
        count(*) filter (where is_seen) as seen,
        count(*) filter (where is_sustained) as sustained
    from reach_facts
    where period_type <> 'quarter'
    group by period_type, period_start, period_end, reach_area, deprivation_decile
)

select
    f.period_type,
    f.period_start,
    f.period_end,
    g.geography_type,
    case
        when g.geography_type = 'deployment' then 'deployment'
        else coalesce(f.reach_area, 'UNASSIGNED')
    end as geography_code,
    f.decile,
    sum(f.children) as children,
    sum(f.registered) as registered,
    sum(f.seen) as seen,
    sum(f.sustained) as sustained
from fine as f
cross join geographies as g
group by 1, 2, 3, 4, 5, 6
