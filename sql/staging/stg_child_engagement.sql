-- When each child first had sustained engagement: the first day on which the contact units
-- of the preceding sustained_window_months reach sustained_min_contacts (metrics.md §3.3,
-- "≥ N contact days within any 12-month window"). Children never sustained have no row.
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
        case when p.contact_unit = 'attendance' then sum(d.attendances) else 1 end as units
    from stg_contact_days as d
    cross join params as p
    group by d.child_key, d.contact_date, p.contact_unit
),

running as (
    select
        d.child_key,
        d.contact_date,
        sum(earlier.units) as units_in_window
    from days as d
    cross join params as p
    inner join days as earlier
        on earlier.child_key = d.child_key
        and earlier.contact_date <= d.contact_date
        and earlier.contact_date > d.contact_date - p.window_length
    group by d.child_key, d.contact_date
)

select
    running.child_key,
    min(running.contact_date) as first_sustained_date
from running
cross join params as p
where running.units_in_window >= p.sustained_min_contacts
group by running.child_key
