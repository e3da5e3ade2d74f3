-- Contact days of each registered child (metrics.md §1.1): a day on which the child, or
-- (with family_contacts_count_for_children) any member of the child's family, attended a
-- session. The attendee's family is that of their registration, not the attendance row's
-- (§1.4 reading 3). Days before the child's birth count (reading 1). One row per child,
-- day and centre; `attendances` counts the rows behind it (contact_unit = "attendance").
with attendee as (
    select
        a.attendance_id,
        a.person_key,
        a.centre_id,
        a.activity_code,
        a.session_date,
        r.family_key
    from attendances as a
    inner join registrations as r on r.person_key = a.person_key
    -- An incremental build recomputes only the days from recompute_from() (a day's rows
    -- depend on that day's attendances alone); a full build's date is before any data.
    where a.session_date >= recompute_from()
),

child_families as (
    select distinct
        child_key,
        person_key,
        family_key
    from stg_registered_children
),

-- One row per child and attendance first (a child registered twice in one family would
-- otherwise see each attendance twice), then per day and centre. Plain grouping, not
-- count(distinct …): it stays within the memory pool and spills.
child_attendances as (
    select
        cf.child_key,
        att.attendance_id,
        att.session_date,
        att.centre_id,
        att.activity_code,
        max(case when att.person_key = cf.person_key then 1 else 0 end) as own
    from child_families as cf
    inner join attendee as att on att.family_key = cf.family_key
    cross join metric_params as p
    where p.family_contacts_count_for_children or att.person_key = cf.person_key
    group by cf.child_key, att.attendance_id, att.session_date, att.centre_id, att.activity_code
)

select
    ca.child_key,
    ca.session_date as contact_date,
    ca.centre_id,
    count(*) as attendances,
    bool_or(activities.service_type = 'targeted') as targeted,
    max(ca.own) = 1 as own_attendance
from child_attendances as ca
left join activities on activities.activity_code = ca.activity_code
group by ca.child_key, ca.session_date, ca.centre_id
