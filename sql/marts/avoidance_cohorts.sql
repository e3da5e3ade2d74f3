-- The cohorts behind cost avoidance (VFM-07, value-for-money.md §3). For each financial
-- year: the engaged cohort E (children under 5 at the year end with sustained engagement in
-- the year) and the comparison cohort C (children under 5 at the year end resident in the
-- deployment's area and not seen by any centre in the year), by stratum (deprivation band
-- of residence at the year end), and how many children of each had their first children's
-- social care event of each kind (CIN referral, child protection plan start, start of
-- being looked after) in each month after the year end. Cohort entry is the year end, so
-- month 1 is April of the next year and month 12 the following March.
--
-- The report chooses the follow-up window, unit costs, durations, deadweight, optimism
-- bias and discounting (reports/vfm_avoidance.toml); `data_until` is the latest CIN
-- census reference date, the end of what the social care extracts can show.
--
-- Only the periods ending on or after recompute_from(): an incremental build keeps the
-- earlier ones (every period in a full build; see [incremental] in sql/metrics.toml).
with reach_facts as (
    select t.*
    from int_reach_facts as t
    where t.period_end >= recompute_from()
),

cohorts as (
    select
        period_end,
        child_key,
        deprivation_band as stratum,
        case when is_sustained then 'engaged' else 'comparison' end as cohort
    from reach_facts
    where period_type = 'fy' and (is_sustained or not is_seen)
),

-- A CIN referral, a CP plan's start, or the start of a period of care.
events as (
    select
        child_key,
        case kind
            when 'cin' then 'cin_referral'
            when 'cp' then 'cp_plan_start'
            else 'cla_start'
        end as outcome,
        start_date as event_date
    from stg_social_care_spells
    where kind <> 'cla' or starts_care
),

first_events as (
    select c.period_end, c.cohort, c.stratum, c.child_key, ev.outcome, min(ev.event_date) as first_date
    from cohorts as c
    inner join events as ev on ev.child_key = c.child_key and ev.event_date > c.period_end
    group by c.period_end, c.cohort, c.stratum, c.child_key, ev.outcome
),

-- Whole months after a month-end entry: an event in April after a 31 March entry is month 1.
event_months as (
    select
        period_end,
        cohort,
        stratum,
        outcome,
        cast(
            (extract(year from first_date) - extract(year from period_end)) * 12
            + extract(month from first_date) - extract(month from period_end)
            as bigint
        ) as months_after,
        count(*) as children
    from first_events
    group by 1, 2, 3, 4, 5
),

sizes as (
    select period_end, cohort, stratum, 'cohort' as outcome, cast(0 as bigint) as months_after,
        count(*) as children
    from cohorts
    group by 1, 2, 3
),

coverage as (
    select max(reference_date) as data_until from cin_episode
)

select
    r.period_end,
    r.cohort,
    r.stratum,
    r.outcome,
    r.months_after,
    r.children,
    coverage.data_until
from (
    select * from sizes
    union all
    select * from event_months
) as r
cross join coverage
