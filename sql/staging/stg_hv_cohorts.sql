-- For every review of hv_reviews.csv and every child in the register: the date the child
-- reaches the cohort age (DOB + cohort age, metrics.md §4) and the deadline of the review.
select
    r.review,
    r.contact_type,
    r.face_to_face_required,
    c.child_key,
    c.date_of_birth,
    cast(c.date_of_birth + cast(r.cohort_age as interval) as date) as cohort_date,
    cast(c.date_of_birth + cast(r.deadline as interval) as date) as deadline_date,
    cast(c.date_of_birth + cast(r.min_age as interval) as date) as earliest_date
from stg_hv_reviews as r
cross join stg_children as c
