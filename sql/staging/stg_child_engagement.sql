-- When each child first had sustained engagement: the first day on which the contact units
-- of the preceding sustained_window_months reach sustained_min_contacts (metrics.md §3.3,
-- "≥ N contact days within any 12-month window"). Children never sustained have no row.
-- A range join per child: simple and within the memory pool, but quadratic in a child's
-- days, so it is the slowest model at county scale (a window-function version tripped
-- DataFusion 55's sort memory accounting; see docs/operations.md).
with params as (
    select
        sustained_min_contacts,
        contact_unit,
        cast(concat(cast(sustained_window_months as varchar), ' months') as interval) as window_length
    from metric_params
),

days as (
    select
        d.child_key,
        d.contact_date,
        case when p.contact_unit = 'attendance' then d.attendances else 1 end as units,
        -- computed here: DataFusion 55 drops an ON condition that names a third table
        d.contact_date - p.window_length as window_start
    from stg_contact_dates as d
    cross join params as p
),

running as (
    select
        d.child_key,
        d.contact_date,
        sum(earlier.units) as units_in_window
    from days as d
    inner join days as earlier
        on earlier.child_key = d.child_key
        and earlier.contact_date <= d.contact_date
        and earlier.contact_date > d.window_start
    group by d.child_key, d.contact_date
)

select
    running.child_key,
    min(running.contact_date) as first_sustained_date
from running
cross join params as p
where running.units_in_window >= p.sustained_min_contacts
group by running.child_key
