-- One row per period and child under 5 resident at the period end (metrics.md §2): where
-- the child lived, whether registered by the period end, seen and sustained in the
-- 12-month window. The reach metrics count these rows; so can an analyst.
--
-- Only the periods ending on or after recompute_from(): an incremental build keeps the
-- earlier ones (every period in a full build; see [incremental] in sql/metrics.toml).
with scoped_periods as (
    select pr.*
    from stg_periods as pr
    where pr.period_end >= recompute_from()
),

params as (
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
        res.lsoa21,
        res.deprivation_decile,
        res.deprivation_band
    from scoped_periods as pr
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
    inner join stg_registered_children as reg
        on reg.child_key = pop.child_key
        and reg.registration_date <= pop.period_end
    cross join params
    -- in WHERE, not ON: DataFusion 55 drops an ON condition that names a third table
    where params.registration_scope = 'any_centre' or reg.centre_id = pop.reach_area
    group by pop.period_type, pop.period_end, pop.child_key
),

contact_units as (
    select
        pop.period_type,
        pop.period_end,
        pop.child_key,
        case
            when params.contact_unit = 'attendance' then sum(d.attendances)
            else count(*)
        end as units
    from population as pop
    cross join params
    inner join stg_contact_dates as d
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
)

select * from facts
