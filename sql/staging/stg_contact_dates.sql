-- Contact days of each registered child across centres: one row per child and day, with
-- the attendances behind it (a day at two centres is one contact day) and the centres it
-- was at.
select
    child_key,
    contact_date,
    sum(attendances) as attendances,
    count(*) as centres,
    min(centre_id) as centre_id
from stg_contact_days
where contact_date >= recompute_from()
group by child_key, contact_date
