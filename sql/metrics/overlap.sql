-- OV-01a/b/c, OV-01 and OV-02 (metrics.md §6): of the families engaged with targeted centre
-- services in a 12-month window (a member attended an activity whose service_type is
-- targeted), how many also had a child open to children's social care (a CIN episode, CP
-- plan or looked-after episode open at any time in the window), to early help (an episode
-- open in the window), or receiving health visiting additional support (a contact in the
-- window at service level universal_plus or partnership_plus; when the extract carries no
-- service level at all, three or more OTHER contacts), and how many services each family
-- had. A family's children are its role = child registrations, linked to the other sources
-- through person_link. Placed by the centre that delivered the targeted activity (a family
-- counts once at each centre it used) and by the family's residence: the LSOA of its
-- children's registrations (the lowest code when they differ, so the choice is stable).
with windows as (
    select period_type, period_start, period_end, window_start
    from stg_periods
    where period_type in ('fy', 'rolling12')
        -- an incremental build keeps the earlier periods (see [incremental] in metrics.toml)
        and period_end >= recompute_from()
),

-- Everything below is counted once per distinct window and given its periods at the end:
-- a financial year is the same window as the rolling 12 months ending on its last day.
distinct_windows as (
    select distinct window_start, period_end
    from windows
),

cohort_centres as (
    select distinct
        w.window_start,
        w.period_end,
        t.family_key,
        t.centre_id
    from distinct_windows as w
    -- a family's targeted months decide membership exactly (int_targeted_months)
    inner join int_targeted_months as t
        on t.month_start between w.window_start and w.period_end
),

cohort as (
    select distinct window_start, period_end, family_key
    from cohort_centres
),

family_children as (
    select distinct family_key, child_key
    from stg_registered_children
    where family_key is not null
),

cohort_children as (
    select c.window_start, c.period_end, c.family_key, fc.child_key
    from cohort as c
    inner join family_children as fc on fc.family_key = c.family_key
),

early_help_spells as (
    select l.child_key, e.episode_start_date as start_date, e.episode_end_date as end_date
    from early_help_episodes as e
    inner join person_link as l
        on l.source = e._source and l.source_person_key = e.child_key
),

hv_contacts_linked as (
    select l.child_key, c.contact_date, c.contact_type, c.service_level
    from hv_contacts as c
    inner join person_link as l
        on l.source = c._source and l.source_person_key = c.key_nhs
),

-- The fallback of OV-01c applies to an extract without service levels, not to a row
-- whose level is blank.
hv_levels as (
    select count(service_level) > 0 as recorded
    from hv_contacts
),

services as (
    select distinct cc.window_start, cc.period_end, cc.family_key, 'social_care' as service
    from cohort_children as cc
    inner join stg_social_care_spells as s
        on s.child_key = cc.child_key
        and s.start_date <= cc.period_end
        and (s.end_date is null or s.end_date >= cc.window_start)
    union
    select distinct cc.window_start, cc.period_end, cc.family_key, 'early_help'
    from cohort_children as cc
    inner join early_help_spells as s
        on s.child_key = cc.child_key
        and s.start_date <= cc.period_end
        and (s.end_date is null or s.end_date >= cc.window_start)
    union
    select cc.window_start, cc.period_end, cc.family_key, 'hv_support'
    from cohort_children as cc
    inner join hv_contacts_linked as h
        on h.child_key = cc.child_key
        and h.contact_date between cc.window_start and cc.period_end
    cross join hv_levels as lv
    group by cc.window_start, cc.period_end, cc.family_key, cc.child_key, lv.recorded
    having (lv.recorded
            and count(*) filter (
                where h.service_level in ('universal_plus', 'partnership_plus')) > 0)
        or (not lv.recorded and count(*) filter (where h.contact_type = 'OTHER') >= 3)
),

family_services as (
    select
        c.window_start,
        c.period_end,
        c.family_key,
        count(s.service) filter (where s.service = 'social_care') as social_care,
        count(s.service) filter (where s.service = 'early_help') as early_help,
        count(s.service) filter (where s.service = 'hv_support') as hv_support,
        -- the targeted centre work itself is the first service
        1 + count(s.service) as services
    from cohort as c
    left join services as s
        on s.window_start = c.window_start
        and s.period_end = c.period_end
        and s.family_key = c.family_key
    group by c.window_start, c.period_end, c.family_key
),

family_residence as (
    select
        family_key,
        min(concat(coalesce(lsoa21, ''), '|', coalesce(lsoa11, ''))) as lsoa_pair
    from stg_registered_children
    where family_key is not null
    group by family_key
),

family_places as (
    select
        r.family_key,
        a.reach_area,
        a.eh_area,
        a.lot,
        coalesce(a.la_code, 'UNKNOWN') as la_code,
        coalesce(a.deprivation_band, 'unknown') as deprivation_band
    from family_residence as r
    left join stg_lsoa_attributes as a
        on (a.lsoa21 is not distinct from nullif(split_part(r.lsoa_pair, '|', 1), ''))
        and (a.lsoa11 is not distinct from nullif(split_part(r.lsoa_pair, '|', 2), ''))
),

-- Where each cohort family counts: its residence geographies and every centre it used.
geography_members as (
    select
        f.window_start,
        f.period_end,
        f.family_key,
        g.geography_type,
        case g.geography_type
            when 'deployment' then 'ALL'
            when 'la' then coalesce(p.la_code, 'UNKNOWN')
            when 'reach_area' then p.reach_area
            when 'eh_area' then p.eh_area
            when 'lot' then p.lot
        end as geography_code
    from cohort as f
    left join family_places as p on p.family_key = f.family_key
    cross join (values ('deployment'), ('la'), ('reach_area'), ('eh_area'), ('lot'))
        as g(geography_type)
    union all
    select window_start, period_end, family_key, 'centre', centre_id
    from cohort_centres
),

-- The breakdowns each family falls in: all, its deprivation band, and its target groups
-- (a family is in a group when any of its children is, or by residence for the
-- deprivation rule; `any` = in at least one active group).
family_groups as (
    select distinct fc.family_key, g.group_code
    from family_children as fc
    inner join stg_child_target_groups as g on g.child_key = fc.child_key
    union
    select p.family_key, t.group_code
    from family_places as p
    inner join ref_target_groups as t
        on t.rule = 'deprivation:most_deprived_30' and t.active
    where p.deprivation_band = 'most_deprived_30'
),

-- Every family with targeted sessions at any time: the breakdowns are per family, and the
-- counts below keep only each window's cohort (deriving them from the cohort's services
-- would compute those again for each reference).
targeted_families as (
    select distinct family_key from int_targeted_months
),

breakdown_members as (
    select family_key, 'all' as breakdown_type, 'all' as breakdown_value
    from targeted_families
    union all
    select f.family_key, 'deprivation', coalesce(p.deprivation_band, 'unknown')
    from targeted_families as f
    left join family_places as p on p.family_key = f.family_key
    union all
    select family_key, 'target_group', group_code from family_groups
    union all
    select distinct family_key, 'target_group', 'any' from family_groups
),

counts as (
    select
        f.window_start,
        f.period_end,
        g.geography_type,
        g.geography_code,
        b.breakdown_type,
        b.breakdown_value,
        count(*) as families,
        count(*) filter (where f.social_care > 0) as social_care,
        count(*) filter (where f.early_help > 0) as early_help,
        count(*) filter (where f.hv_support > 0) as hv_support,
        count(*) filter (where f.services > 1) as any_other,
        count(*) filter (where f.services = 1) as services_1,
        count(*) filter (where f.services = 2) as services_2,
        count(*) filter (where f.services = 3) as services_3,
        count(*) filter (where f.services = 4) as services_4
    from family_services as f
    inner join geography_members as g
        on g.window_start = f.window_start
        and g.period_end = f.period_end
        and g.family_key = f.family_key
    inner join breakdown_members as b on b.family_key = f.family_key
    where g.geography_code is not null
    group by
        f.window_start, f.period_end, g.geography_type, g.geography_code,
        b.breakdown_type, b.breakdown_value
),

-- Each count becomes the metric rows it feeds, in one pass over `counts` (a CTE named
-- three times is computed three times): OV-01a/b/c and OV-01 in every breakdown; OV-02,
-- the distribution of families by number of services, only from the `all` breakdown, as a
-- breakdown of its own with its total as the `all` row (every family, 100%), so that
-- disclosure control can treat the four counts as parts of a whole: none can be worked
-- out from the others.
outputs as (
    select *
    from (values
        ('OV-01a', ''), ('OV-01b', ''), ('OV-01c', ''), ('OV-01', ''),
        ('OV-02', '1'), ('OV-02', '2'), ('OV-02', '3'), ('OV-02', '4'), ('OV-02', 'all')
    ) as o(metric_id, services)
),

all_metrics as (
    select
        o.metric_id,
        w.period_type,
        w.period_start,
        w.period_end,
        c.geography_type,
        c.geography_code,
        case
            when o.metric_id <> 'OV-02' then c.breakdown_type
            when o.services = 'all' then 'all'
            else 'services'
        end as breakdown_type,
        case when o.metric_id = 'OV-02' then o.services else c.breakdown_value end
            as breakdown_value,
        case o.metric_id
            when 'OV-01a' then c.social_care
            when 'OV-01b' then c.early_help
            when 'OV-01c' then c.hv_support
            when 'OV-01' then c.any_other
            else case o.services
                when '1' then c.services_1
                when '2' then c.services_2
                when '3' then c.services_3
                when '4' then c.services_4
                else c.families
            end
        end as numerator,
        c.families as denominator
    from counts as c
    inner join windows as w
        on w.window_start = c.window_start and w.period_end = c.period_end
    cross join outputs as o
    where o.metric_id <> 'OV-02' or c.breakdown_type = 'all'
)

select
    metric_id,
    period_type,
    period_start,
    period_end,
    geography_type,
    geography_code,
    breakdown_type,
    breakdown_value,
    numerator,
    denominator,
    cast(null as bigint) as comparison_numerator,
    cast(null as bigint) as comparison_denominator,
    '' as quality_flags
from all_metrics
