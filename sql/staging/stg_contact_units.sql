-- Each child's contact units in date order, numbered 1, 2, 3 …: contact days, or
-- attendances with contact_unit = "attendance" (a day with three attendances is three
-- units on that day). stg_child_engagement compares unit k with unit k − N + 1.
with params as (
    select
        contact_unit
    from metric_params
),

days as (
    select
        child_key,
        contact_date,
        sum(attendances) as attendances
    from stg_contact_days
    group by child_key, contact_date
),

-- Attendance units: a day with three attendances is three units on that day.
units as (
    select
        d.child_key,
        d.contact_date,
        case when p.contact_unit = 'attendance' then d.attendances else 1 end as weight
    from days as d
    cross join params as p
),

copies as (
    select
        child_key,
        contact_date,
        unnest(range(weight)) as copy
    from units
),

numbered as (
    select
        child_key,
        contact_date,
        row_number() over (partition by child_key order by contact_date) as k
    from copies
)

select * from numbered
