-- The rare contact days a child had at two or more centres (stg_contact_dates.centres > 1),
-- one row per centre with the attendances there. value_for_money counts such a day once in
-- each geography, so it reads these rows site by site. A model of its own so that it reads
-- them instead of matching every contact day against stg_contact_dates: a day's rows depend
-- on that day alone, so an incremental build recomputes only the days from
-- recompute_from().
select
    d.child_key,
    d.contact_date,
    d.centre_id,
    d.attendances
from stg_contact_dates as c
inner join stg_contact_days as d
    on d.child_key = c.child_key
    and d.contact_date = c.contact_date
where c.centres > 1
    -- on both sides, so that each scan skips the earlier dates
    and c.contact_date >= recompute_from()
    and d.contact_date >= recompute_from()
