-- When each child first had sustained engagement: the first day on which the contact units
-- of the preceding sustained_window_months reach sustained_min_contacts (metrics.md §3.3,
-- "≥ N contact days within any 12-month window"). Children never sustained have no row.
--
-- Counted in contact days (the default), a day d is sustained when the child's contact day
-- N-1 places before it falls inside the window ending on d (the days are distinct and in
-- order, so the N days from that one to d are all in the window). That is an equi-join on
-- the day's number, linear in the days. Counted in attendances, a day carries several units,
-- so each day is compared with every earlier day of the child inside its window (a range
-- join, quadratic in a child's days). Only one of the two branches has rows: the other's
-- input is empty, as the parameters select.
with params as (
    select
        sustained_min_contacts,
        contact_unit,
        cast(concat(cast(sustained_window_months as varchar), ' months') as interval) as window_length
    from metric_params
),

-- Only a child with a contact day from recompute_from() on can have a sustained day then,
-- and only one not already sustained gets a row: on a night that adds a day, most children
-- with a contact that day are in last_build (_models.toml), and their days need no reading.
recent_children as (
    select distinct d.child_key
    from stg_contact_dates as d
    where d.contact_date >= recompute_from()
        and not exists (select 1 from last_build as l where l.child_key = d.child_key)
),

days as (
    select
        d.child_key,
        d.contact_date,
        d.attendances,
        p.contact_unit,
        -- computed here: DataFusion 55 drops an ON condition that names a third table
        d.contact_date - p.window_length as window_start,
        p.sustained_min_contacts - 1 as days_back
    from recent_children as r
    inner join stg_contact_dates as d on d.child_key = r.child_key
    cross join params as p
    -- A day from recompute_from() on looks back one window at most: earlier days cannot
    -- change whether it is sustained (an incremental build keeps the children sustained
    -- before then, keep_earlier in _models.toml).
    where d.contact_date > recompute_from() - p.window_length
),

numbered_days as (
    select
        child_key,
        contact_date,
        window_start,
        row_number() over (partition by child_key order by contact_date) as day_number,
        row_number() over (partition by child_key order by contact_date) - days_back as back_number
    from days
    where contact_unit <> 'attendance'
),

sustained_by_days as (
    select d.child_key, d.contact_date
    from numbered_days as d
    inner join numbered_days as back
        on back.child_key = d.child_key
        and back.day_number = d.back_number
    where back.contact_date > d.window_start
),

attendance_days as (
    select child_key, contact_date, attendances as units, window_start
    from days
    where contact_unit = 'attendance'
),

sustained_by_attendances as (
    select d.child_key, d.contact_date
    from attendance_days as d
    inner join attendance_days as earlier
        on earlier.child_key = d.child_key
        and earlier.contact_date <= d.contact_date
        and earlier.contact_date > d.window_start
    cross join params as p
    group by d.child_key, d.contact_date, p.sustained_min_contacts
    having sum(earlier.units) >= p.sustained_min_contacts
),

sustained as (
    select * from sustained_by_days
    union all
    select * from sustained_by_attendances
)

select
    child_key,
    min(contact_date) as first_sustained_date
from sustained
where contact_date >= recompute_from()
group by child_key
