-- SC-05 and SC-06 (metrics.md §5): early help episodes of children aged 0–4 at the episode
-- start, and escalation to social care after an early help episode closed in the year:
-- a step-up closure reason (reference/early_help_closure_reasons.csv, is_step_up), or a
-- CIN referral of the same child (through person_link) after the end and within 12
-- calendar months of it. SC-06 is flagged provisional while the latest census does not yet
-- reach 12 months past the period end. Placed by the episode's own postcode when it has one.
with years as (
    select period_type, period_start, period_end
    from stg_periods
    where period_type = 'fy'
),

episodes as (
    select
        e.child_key,
        e.episode_start_date,
        e.episode_end_date,
        e.date_of_birth,
        coalesce(r.is_step_up, false) as step_up,
        coalesce(a.la_code, 'UNKNOWN') as la_code,
        a.reach_area
    from early_help_episodes as e
    left join ref_early_help_closure_reasons as r on r.code = e.closure_reason
    left join stg_lsoa_attributes as a
        on (a.lsoa11 is not distinct from e.lsoa11)
        and (a.lsoa21 is not distinct from e.lsoa21)
    where e.date_of_birth <= e.episode_start_date
        and e.date_of_birth + interval '5 years' > e.episode_start_date
),

-- Each early help child's CIN referrals, through the linked child.
child_of as (
    select source_person_key, child_key as linked
    from person_link
),

referrals as (
    select distinct l.linked, e.referral_date
    from cin_episode as e
    inner join child_of as l on l.source_person_key = e.la_child_key
),

closed as (
    select
        y.period_end,
        ep.*,
        max(case
            when rf.referral_date > ep.episode_end_date
                and rf.referral_date <= ep.episode_end_date + interval '12 months' then 1
            else 0
        end) as referred_after
    from years as y
    inner join episodes as ep
        on ep.episode_end_date between y.period_start and y.period_end
    left join child_of as l on l.source_person_key = ep.child_key
    left join referrals as rf on rf.linked = l.linked
    group by
        y.period_end, ep.child_key, ep.episode_start_date, ep.episode_end_date,
        ep.date_of_birth, ep.step_up, ep.la_code, ep.reach_area
),

events as (
    select 'SC-05' as metric_id, y.period_end, ep.la_code, ep.reach_area, 1 as num, 0 as den
    from years as y
    inner join episodes as ep
        on ep.episode_start_date <= y.period_end
        and (ep.episode_end_date is null or ep.episode_end_date >= y.period_start)
    union all
    select
        'SC-06', period_end, la_code, reach_area,
        case when step_up or referred_after = 1 then 1 else 0 end, 1
    from closed
    union all
    select 'SC-06a', period_end, la_code, reach_area, case when step_up then 1 else 0 end, 1
    from closed
    union all
    select 'SC-06b', period_end, la_code, reach_area, referred_after, 1
    from closed
    where not step_up
),

placed as (
    select
        g.geography_type,
        case g.geography_type
            when 'deployment' then 'ALL'
            when 'la' then ev.la_code
            when 'reach_area' then ev.reach_area
        end as geography_code,
        ev.*
    from events as ev
    cross join (values ('deployment'), ('la'), ('reach_area')) as g(geography_type)
),

counted as (
    select
        pl.metric_id,
        y.period_type,
        y.period_start,
        pl.period_end,
        pl.geography_type,
        pl.geography_code,
        sum(pl.num) as numerator,
        sum(pl.den) as closures
    from placed as pl
    inner join years as y on y.period_end = pl.period_end
    where pl.geography_code is not null
    group by
        pl.metric_id, y.period_type, y.period_start, pl.period_end,
        pl.geography_type, pl.geography_code
),

latest_census as (
    select max(reference_date) as reference_date from cin_header
)

select
    c.metric_id,
    c.period_type,
    c.period_start,
    c.period_end,
    c.geography_type,
    c.geography_code,
    'all' as breakdown_type,
    'all' as breakdown_value,
    c.numerator,
    case when c.metric_id = 'SC-05' then d.people else c.closures end as denominator,
    cast(null as bigint) as comparison_numerator,
    cast(null as bigint) as comparison_denominator,
    case
        when c.metric_id like 'SC-06%' and (lc.reference_date is null
            or lc.reference_date < c.period_end + interval '12 months') then 'provisional'
        when c.geography_code = 'UNKNOWN' then 'approximate'
        else ''
    end as quality_flags
from counted as c
cross join latest_census as lc
left join stg_population_0_4 as d
    on d.geography_type = c.geography_type
    and d.geography_code = c.geography_code
    and d.breakdown_type = 'all'
where c.metric_id <> 'SC-05' or d.people is not null
