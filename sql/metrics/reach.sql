-- REACH-01 … REACH-06 (metrics.md §2): children under 5 resident in each geography at the
-- period end, their registration, contact days in the 12-month window and sustained
-- engagement; by deprivation band (always), sex, ethnicity group and target group.
-- Quarters carry registration only; financial years and rolling windows carry everything.
with params as (
    select * from metric_params
),

population as (
    select
        pr.period_type,
        pr.period_start,
        pr.period_end,
        pr.window_start,
        c.child_key,
        c.sex,
        c.ethnicity_group,
        res.reach_area,
        res.eh_area,
        res.lot,
        res.la_code,
        res.deprivation_band
    from stg_periods as pr
    inner join stg_children as c
        on c.date_of_birth <= pr.period_end
        and c.date_of_birth + interval '5 years' > pr.period_end
    inner join stg_residence as res
        on res.child_key = c.child_key
        and res.as_of = pr.period_end
),

registered as (
    select
        pop.period_type,
        pop.period_end,
        pop.child_key
    from population as pop
    cross join params
    inner join stg_registered_children as reg
        on reg.child_key = pop.child_key
        and reg.registration_date <= pop.period_end
        and (params.registration_scope = 'any_centre' or reg.centre_id = pop.reach_area)
    group by pop.period_type, pop.period_end, pop.child_key
),

contact_units as (
    select
        pop.period_type,
        pop.period_end,
        pop.child_key,
        case
            when params.contact_unit = 'attendance' then sum(d.attendances)
            else count(distinct d.contact_date)
        end as units
    from population as pop
    cross join params
    inner join stg_contact_days as d
        on d.child_key = pop.child_key
        and d.contact_date between pop.window_start and pop.period_end
    where pop.period_type <> 'quarter'
    group by pop.period_type, pop.period_end, pop.child_key, params.contact_unit
),

facts as (
    select
        pop.*,
        registered.child_key is not null as is_registered,
        coalesce(cu.units, 0) >= 1 as is_seen,
        coalesce(cu.units, 0) >= params.sustained_min_contacts as is_sustained
    from population as pop
    cross join params
    left join registered
        on registered.child_key = pop.child_key
        and registered.period_type = pop.period_type
        and registered.period_end = pop.period_end
    left join contact_units as cu
        on cu.child_key = pop.child_key
        and cu.period_type = pop.period_type
        and cu.period_end = pop.period_end
),

-- Each child counts once in every geography that contains them.
placed as (
    select 'deployment' as geography_type, 'ALL' as geography_code, * from facts
    union all
    select 'la' as geography_type, la_code as geography_code, * from facts
    union all
    select 'reach_area' as geography_type, reach_area as geography_code, * from facts where reach_area is not null
    union all
    select 'eh_area' as geography_type, eh_area as geography_code, * from facts where eh_area is not null
    union all
    select 'lot' as geography_type, lot as geography_code, * from facts where lot is not null
),

broken_down as (
    select 'all' as breakdown_type, 'all' as breakdown_value, * from placed
    union all
    select 'deprivation' as breakdown_type, deprivation_band as breakdown_value, * from placed
    union all
    select 'sex' as breakdown_type, sex as breakdown_value, * from placed
    union all
    select 'ethnicity_group' as breakdown_type, ethnicity_group as breakdown_value, * from placed
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
        count(*) as children,
        count(*) filter (where is_registered) as registered,
        count(*) filter (where is_seen) as seen,
        count(*) filter (where is_sustained) as sustained,
        count(*) filter (where is_registered and is_sustained) as registered_sustained,
        count(*) filter (where deprivation_band = 'most_deprived_30') as most_deprived,
        count(*) filter (where deprivation_band = 'most_deprived_30' and not is_seen)
            as most_deprived_unreached
    from broken_down
    group by
        period_type, period_start, period_end,
        geography_type, geography_code, breakdown_type, breakdown_value
),

-- REACH-04: registered children in each target group (the deprivation group follows the
-- child's residence at the period end); `any` = in at least one active group.
child_groups as (
    select
        f.period_type,
        f.period_end,
        f.child_key,
        g.group_code
    from facts as f
    inner join stg_child_target_groups as g on g.child_key = f.child_key
    where f.is_registered
    union
    select
        f.period_type,
        f.period_end,
        f.child_key,
        'MOST_DEPRIVED_30'
    from facts as f
    inner join ref_target_groups as t
        on t.rule = 'deprivation:most_deprived_30' and t.active
    where f.is_registered and f.deprivation_band = 'most_deprived_30'
),

group_members as (
    select
        f.*,
        g.group_code
    from facts as f
    inner join child_groups as g
        on g.child_key = f.child_key
        and g.period_type = f.period_type
        and g.period_end = f.period_end
    union all
    select
        f.*,
        'any'
    from facts as f
    where f.is_registered
        and exists (
            select 1 from child_groups as g
            where g.child_key = f.child_key
                and g.period_type = f.period_type
                and g.period_end = f.period_end
        )
),

group_placed as (
    select 'deployment' as geography_type, 'ALL' as geography_code, * from group_members
    union all
    select 'la' as geography_type, la_code as geography_code, * from group_members
    union all
    select 'reach_area' as geography_type, reach_area as geography_code, * from group_members where reach_area is not null
    union all
    select 'eh_area' as geography_type, eh_area as geography_code, * from group_members where eh_area is not null
    union all
    select 'lot' as geography_type, lot as geography_code, * from group_members where lot is not null
),

-- REACH-06: children seen at a centre (delivery) and how many of them live in its reach area.
seen_at_centre as (
    select distinct
        f.period_type,
        f.period_start,
        f.period_end,
        d.centre_id,
        f.child_key,
        f.reach_area = d.centre_id as lives_in_reach_area
    from facts as f
    inner join stg_contact_days as d
        on d.child_key = f.child_key
        and d.contact_date between f.window_start and f.period_end
    where f.period_type <> 'quarter'
),

metric_rows as (
    select 'REACH-01' as metric_id, c.*, registered as numerator, children as denominator
    from counts as c
    union all
    select 'REACH-02' as metric_id, c.*, seen as numerator, children as denominator
    from counts as c where period_type <> 'quarter'
    union all
    select 'REACH-03' as metric_id, c.*, sustained as numerator, children as denominator
    from counts as c where period_type <> 'quarter'
    union all
    select 'REACH-03R' as metric_id, c.*, registered_sustained as numerator, registered as denominator
    from counts as c where period_type <> 'quarter'
    union all
    select 'REACH-05' as metric_id, c.*, most_deprived_unreached as numerator, most_deprived as denominator
    from counts as c where period_type <> 'quarter' and breakdown_type in ('all', 'sex', 'ethnicity_group')
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
from metric_rows
union all
select
    'REACH-04',
    period_type,
    period_start,
    period_end,
    geography_type,
    geography_code,
    'target_group',
    group_code,
    count(*) filter (where is_sustained),
    count(*),
    cast(null as bigint),
    cast(null as bigint),
    ''
from group_placed
where period_type <> 'quarter'
group by period_type, period_start, period_end, geography_type, geography_code, group_code
union all
select
    'REACH-06',
    period_type,
    period_start,
    period_end,
    'centre',
    centre_id,
    'all',
    'all',
    count(*) filter (where lives_in_reach_area),
    count(*),
    cast(null as bigint),
    cast(null as bigint),
    ''
from seen_at_centre
group by period_type, period_start, period_end, centre_id
