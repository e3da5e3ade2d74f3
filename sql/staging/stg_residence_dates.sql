-- Every (child, date) at which a metric needs the child's residence: each period end at
-- which the child is under 5, each ASQ-3 review date, each HV cohort date. An incremental
-- build needs only the dates from recompute_from() on.
select dates.child_key, dates.as_of
from (
    select distinct
        c.child_key,
        p.period_end as as_of
    from stg_children as c
    inner join (select distinct period_end from stg_periods) as p
        on c.date_of_birth <= p.period_end
        and c.date_of_birth + interval '5 years' > p.period_end
    union
    select distinct
        child_key,
        review_date
    from stg_asq3_reviews
    union
    select distinct
        child_key,
        cohort_date
    from stg_hv_cohorts
) as dates
where dates.as_of >= recompute_from()
