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
    -- implied by the join (period_end >= recompute_from()), written out so that the scan
    -- skips the row groups of earlier dates
    where res.as_of >= recompute_from()
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

-- The contact units of the window are counted in two ways. A period the last build counted
-- (last_build in _models.toml: on a night that adds days after all earlier data) carries
-- its units and adds those of the new days; any other period (every period of a full
-- build, a period new tonight) counts its window. Both give the same units: the last
-- build counted every day of the window before recompute_from().
carried as (
    select l.period_type, l.period_end, l.child_key, l.contact_units
    from last_build as l
    where l.period_end >= recompute_from()
),

carried_periods as (
    select distinct period_type, period_end
    from carried
),

measured_population as (
    select
        pop.period_type,
        pop.period_end,
        pop.window_start,
        pop.child_key,
        cp.period_end is not null as is_carried
    from population as pop
    left join carried_periods as cp
        on cp.period_type = pop.period_type
        and cp.period_end = pop.period_end
    -- quarters measure no contact (is_seen is for 12-month windows)
    where pop.period_type <> 'quarter'
),

new_days as (
    select child_key, contact_date, attendances
    from stg_contact_dates
    where contact_date >= recompute_from()
),

-- The days counted for each child: for a carried period the new ones (its window opened
-- before them: the last build had the period, so its data had reached the period's start,
-- and only the period end bounds them), for any other period every day of its window.
counted_days as (
    select pop.period_type, pop.period_end, pop.child_key, d.attendances
    from measured_population as pop
    inner join new_days as d
        on d.child_key = pop.child_key
        and d.contact_date <= pop.period_end
    where pop.is_carried
    union all
    select pop.period_type, pop.period_end, pop.child_key, d.attendances
    from measured_population as pop
    inner join stg_contact_dates as d
        on d.child_key = pop.child_key
        and d.contact_date between pop.window_start and pop.period_end
    where not pop.is_carried
),

contact_units as (
    select u.period_type, u.period_end, u.child_key, sum(u.units) as units
    from (
        select period_type, period_end, child_key, contact_units as units
        from carried
        union all
        select
            d.period_type,
            d.period_end,
            d.child_key,
            case when params.contact_unit = 'attendance' then d.attendances else 1 end
        from counted_days as d
        cross join params
    ) as u
    group by u.period_type, u.period_end, u.child_key
),

facts as (
    select
        pop.*,
        registered.child_key is not null as is_registered,
        coalesce(cu.units, 0) as contact_units,
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
