-- REACH-01 … REACH-06 (metrics.md §2) from int_reach_facts: by residence geography,
-- deprivation band (always), sex, ethnicity group and target group; REACH-06 by the centre
-- that delivered. Quarters carry registration only.
--
-- Only the periods ending on or after recompute_from(): an incremental build keeps the
-- earlier ones (every period in a full build; see [incremental] in sql/metrics.toml).
with reach_facts as (
    select t.*
    from int_reach_facts as t
    where t.period_end >= recompute_from()
),

scoped_periods as (
    select t.*
    from stg_periods as t
    where t.period_end >= recompute_from()
),

geographies as (
    select * from (values ('deployment'), ('la'), ('reach_area'), ('eh_area'), ('lot'))
        as g(geography_type)
),

breakdowns as (
    select * from (values ('all'), ('deprivation'), ('sex'), ('ethnicity_group'))
        as b(breakdown_type)
),

-- Counted first at the finest grain (each combination of places and groups), then spread
-- over the geographies and breakdowns, where every child counts once in each: the counts
-- add up, and the spreading multiplies a few thousand rows instead of every child.
fine as (
    select
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
        count(*) as children,
        count(*) filter (where is_registered) as registered,
        count(*) filter (where is_seen) as seen,
        count(*) filter (where is_sustained) as sustained,
        count(*) filter (where is_registered and is_sustained) as registered_sustained,
        count(*) filter (where deprivation_band = 'most_deprived_30') as most_deprived,
        count(*) filter (where deprivation_band = 'most_deprived_30' and not is_seen)
            as most_deprived_unreached
    from reach_facts
    group by
        period_type, period_start, period_end, la_code, reach_area, eh_area, lot,
        deprivation_band, sex, ethnicity_group
),

placed as (
    select
        g.geography_type,
        case g.geography_type
            when 'deployment' then 'ALL'
            when 'la' then f.la_code
            when 'reach_area' then f.reach_area
            when 'eh_area' then f.eh_area
            when 'lot' then f.lot
        end as geography_code,
        b.breakdown_type,
        case b.breakdown_type
            when 'all' then 'all'
            when 'deprivation' then f.deprivation_band
            when 'sex' then f.sex
            when 'ethnicity_group' then f.ethnicity_group
        end as breakdown_value,
        f.*
    from fine as f
    cross join geographies as g
    cross join breakdowns as b
),

counts as (
    select
        period_type,
        period_start,
        period_end,
        geography_type,
        geography_code,
        breakdown_type,
        breakdown_value,
        sum(children) as children,
        sum(registered) as registered,
        sum(seen) as seen,
        sum(sustained) as sustained,
        sum(registered_sustained) as registered_sustained,
        sum(most_deprived) as most_deprived,
        sum(most_deprived_unreached) as most_deprived_unreached
    from placed
    where geography_code is not null
    group by
        period_type, period_start, period_end,
        geography_type, geography_code, breakdown_type, breakdown_value
),

population_metrics as (
    select
        m.metric_id,
        c.period_type,
        c.period_start,
        c.period_end,
        c.geography_type,
        c.geography_code,
        c.breakdown_type,
        c.breakdown_value,
        case m.metric_id
            when 'REACH-01' then c.registered
            when 'REACH-02' then c.seen
            when 'REACH-03' then c.sustained
            when 'REACH-03R' then c.registered_sustained
            when 'REACH-05' then c.most_deprived_unreached
        end as numerator,
        case m.metric_id
            when 'REACH-03R' then c.registered
            when 'REACH-05' then c.most_deprived
            else c.children
        end as denominator
    from counts as c
    cross join (values ('REACH-01'), ('REACH-02'), ('REACH-03'), ('REACH-03R'), ('REACH-05'))
        as m(metric_id)
    where (m.metric_id = 'REACH-01' or c.period_type <> 'quarter')
        -- REACH-05 is itself about the most deprived areas: no deprivation breakdown.
        and (m.metric_id <> 'REACH-05' or c.breakdown_type <> 'deprivation')
),

-- REACH-04: registered children in each target group (the deprivation group follows the
-- child's residence at the period end); `any` = in at least one active group.
child_groups as (
    select
        f.period_type,
        f.period_end,
        f.child_key,
        g.group_code
    from reach_facts as f
    inner join stg_child_target_groups as g on g.child_key = f.child_key
    where f.is_registered and f.period_type <> 'quarter'
    union
    select
        f.period_type,
        f.period_end,
        f.child_key,
        t.group_code
    from reach_facts as f
    inner join ref_target_groups as t
        on t.rule = 'deprivation:most_deprived_30' and t.active
    where f.is_registered and f.period_type <> 'quarter'
        and f.deprivation_band = 'most_deprived_30'
),

group_members as (
    select
        period_type,
        period_end,
        child_key,
        group_code
    from child_groups
    union
    select
        period_type,
        period_end,
        child_key,
        'any'
    from child_groups
),

group_fine as (
    select
        f.period_type,
        f.period_start,
        f.period_end,
        f.la_code,
        f.reach_area,
        f.eh_area,
        f.lot,
        gm.group_code,
        count(*) filter (where f.is_sustained) as sustained,
        count(*) as members
    from group_members as gm
    inner join reach_facts as f
        on f.child_key = gm.child_key
        and f.period_type = gm.period_type
        and f.period_end = gm.period_end
    group by
        f.period_type, f.period_start, f.period_end, f.la_code, f.reach_area, f.eh_area, f.lot,
        gm.group_code
),

group_placed as (
    select
        g.geography_type,
        case g.geography_type
            when 'deployment' then 'ALL'
            when 'la' then f.la_code
            when 'reach_area' then f.reach_area
            when 'eh_area' then f.eh_area
            when 'lot' then f.lot
        end as geography_code,
        f.*
    from group_fine as f
    cross join geographies as g
),

group_metrics as (
    select
        'REACH-04' as metric_id,
        period_type,
        period_start,
        period_end,
        geography_type,
        geography_code,
        'target_group' as breakdown_type,
        group_code as breakdown_value,
        sum(sustained) as numerator,
        sum(members) as denominator
    from group_placed
    where geography_code is not null
    group by period_type, period_start, period_end, geography_type, geography_code, group_code
),

-- REACH-06: children seen at a centre (delivery) and how many of them live in its reach area.
-- The centres each child was seen at in each window (days placed in windows first: a day
-- falls in only a few windows, whereas a child has many days). Each distinct window is read
-- once: a financial year is the same window as the rolling 12 months ending on its last day.
windows as (
    select distinct window_start, period_end
    from scoped_periods
    where period_type <> 'quarter'
),

window_centres as (
    select distinct
        w.window_start,
        w.period_end,
        d.centre_id,
        d.child_key
    from stg_contact_days as d
    inner join windows as w
        on d.contact_date between w.window_start and w.period_end
),

centre_windows as (
    select pr.period_type, pr.period_end, wc.centre_id, wc.child_key
    from window_centres as wc
    inner join scoped_periods as pr
        on pr.window_start = wc.window_start and pr.period_end = wc.period_end
    where pr.period_type <> 'quarter'
),

seen_at_centre as (
    select
        f.period_type,
        f.period_start,
        f.period_end,
        cw.centre_id,
        f.child_key,
        coalesce(f.reach_area = cw.centre_id, false) as lives_in_reach_area
    from centre_windows as cw
    inner join reach_facts as f
        on f.child_key = cw.child_key
        and f.period_type = cw.period_type
        and f.period_end = cw.period_end
),

delivery_metrics as (
    select
        'REACH-06' as metric_id,
        period_type,
        period_start,
        period_end,
        'centre' as geography_type,
        centre_id as geography_code,
        'all' as breakdown_type,
        'all' as breakdown_value,
        count(*) filter (where lives_in_reach_area) as numerator,
        count(*) as denominator
    from seen_at_centre
    group by period_type, period_start, period_end, centre_id
),

all_metrics as (
    select * from population_metrics
    union all
    select * from group_metrics
    union all
    select * from delivery_metrics
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
from all_metrics
