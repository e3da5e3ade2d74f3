-- Attendances at each centre on each day, for value for money's activity per site and year
-- (value-for-money.md §1): the attendances are read once here instead of once for every use
-- in value_for_money. A day's row depends on that day's sessions alone, so an incremental
-- build recomputes the days from recompute_from().
select
    centre_id,
    session_date,
    count(*) as attendances
from attendances
where session_date >= recompute_from()
group by centre_id, session_date
