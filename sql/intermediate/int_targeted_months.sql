-- The months in which each family used each centre's targeted services (a member attended
-- an activity whose service_type is targeted), for the overlap metrics (metrics.md §6) and
-- value for money's families per site. Their windows and years start on the first of a
-- month and end on a month end, so these months decide membership exactly, and there are
-- far fewer of them than attendances: the attendances are read once here instead of once
-- for every use of a cohort.
--
-- Dated by the month's last day: a session changes only its own month's row, so an
-- incremental build recomputes the months ending on or after recompute_from().
with months as (
    select
        a.family_key,
        a.centre_id,
        cast(date_trunc('month', a.session_date) as date) as month_start
    from attendances as a
    inner join activities as act on act.activity_code = a.activity_code
    where act.service_type = 'targeted' and a.family_key is not null
        -- a cheap first cut (a month ending on or after recompute_from() began less than a
        -- month before it); the exact one is below
        and a.session_date > recompute_from() - interval '1 month'
)

select distinct
    family_key,
    centre_id,
    month_start,
    cast(month_start + interval '1 month' - interval '1 day' as date) as month_end
from months
where month_start + interval '1 month' - interval '1 day' >= recompute_from()
