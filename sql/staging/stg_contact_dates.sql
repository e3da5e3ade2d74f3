-- Contact days of each registered child across centres: one row per child and day, with
-- the attendances behind it (a day at two centres is one contact day).
select
    child_key,
    contact_date,
    sum(attendances) as attendances
from stg_contact_days
group by child_key, contact_date
