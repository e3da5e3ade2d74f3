-- Children under 5 and how many were registered, seen and sustained, by LSOA (2021) and
-- deprivation band, per financial year: where families live, for the closure and budget
-- scenarios of the value-for-money report (value-for-money.md §5). Small counts: reports
-- aggregate them before anything is shown.
--
-- Only the periods ending on or after recompute_from(): an incremental build keeps the
-- earlier ones (every period in a full build; see [incremental] in sql/metrics.toml).
with reach_facts as (
    select t.*
    from int_reach_facts as t
    where t.period_end >= recompute_from()
)

select
    period_start,
    period_end,
    lsoa21,
    deprivation_band,
    count(*) as children,
    count(*) filter (where is_registered) as registered,
    count(*) filter (where is_seen) as seen,
    count(*) filter (where is_sustained) as sustained
from reach_facts
where period_type = 'fy' and lsoa21 is not null
group by period_start, period_end, lsoa21, deprivation_band
