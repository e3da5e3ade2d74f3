-- The health visiting review parameters of hv_reviews.csv with their ISO 8601 durations
-- written as interval text (P30D → '30 days', P12M → '12 months'), ready for
-- `cast(… as interval)`; Delta tables cannot store intervals themselves.
select
    review,
    contact_type,
    replace(replace(substr(cohort_age, 2), 'D', ' days'), 'M', ' months') as cohort_age,
    replace(replace(substr(deadline, 2), 'D', ' days'), 'M', ' months') as deadline,
    replace(replace(substr(min_age, 2), 'D', ' days'), 'M', ' months') as min_age,
    face_to_face_required,
    indicator,
    confirmed
from ref_hv_reviews
