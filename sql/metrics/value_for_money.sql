-- VFM-01 … VFM-06 (value-for-money.md §1–2): the cost attributable to each site in a
-- financial year divided by activity at the site in that year; and the same for each lot,
-- provider, early help area and the deployment (costs summed over their sites, children
-- counted once however many of the sites they used).
--
-- Cost of a site: int_site_costs. The numerator is that cost in pence, so the counts of
-- the catalogue stay whole numbers; value = pence / 100 / denominator. VFM-06a/b divide
-- the same cost by children with good outcomes (ASQ-3 all five domains; EYFSP GLD) who had
-- sustained engagement at the unit's sites before the outcome was measured: all of the
-- cost over those children, with no claim that the unit caused the outcome.
--
-- Only the periods ending on or after recompute_from(): an incremental build keeps the
-- earlier ones (every period in a full build; see [incremental] in sql/metrics.toml).
with site_cost as (
    select t.*
    from int_site_costs as t
    where t.period_end >= recompute_from()
),

asq3_facts as (
    select t.*
    from int_asq3_facts as t
    where t.period_end >= recompute_from()
),

params as (
    select * from metric_params
),

-- The financial years with costs (the only ones reported).
years as (
    select distinct financial_year, period_start, period_end
    from site_cost
),

-- Each site under every geography it rolls up to.
placed as (
    select
        g.geography_type,
        case g.geography_type
            when 'centre' then s.centre_id
            when 'lot' then s.lot
            when 'provider' then s.provider
            when 'eh_area' then s.early_help_area
            else 'ALL'
        end as geography_code,
        s.*
    from site_cost as s
    cross join (values ('centre'), ('lot'), ('provider'), ('eh_area'), ('deployment'))
        as g(geography_type)
),

costs as (
    select financial_year, period_start, period_end, geography_type, geography_code,
        sum(pence) as pence
    from placed
    group by 1, 2, 3, 4, 5
),

-- Activity is first reduced to one row per site and person (or per site, for attendance
-- rows), and only then spread over the geographies, where a child or family is counted
-- once however many of the geography's sites they used.
site_registered as (
    select distinct s.financial_year, s.centre_id, r.child_key
    from site_cost as s
    inner join stg_registered_children as r
        on r.centre_id = s.centre_id and r.registration_date <= s.period_end
    inner join stg_children as c on c.child_key = r.child_key
    where c.date_of_birth <= s.period_end
        and c.date_of_birth + interval '5 years' > s.period_end
),

-- Families with targeted sessions at the site in the year: financial years start on the
-- first of a month and end on a month end, so the family's targeted months decide it.
site_families as (
    select distinct s.financial_year, s.centre_id, t.family_key
    from site_cost as s
    inner join int_targeted_months as t
        on t.centre_id = s.centre_id
        and t.month_start between s.period_start and s.period_end
),

site_attendances as (
    select s.financial_year, s.centre_id, sum(d.attendances) as n
    from site_cost as s
    inner join int_site_days as d
        on d.centre_id = s.centre_id
        and d.session_date between s.period_start and s.period_end
    group by s.financial_year, s.centre_id
),

registered as (
    select distinct p.financial_year, p.geography_type, p.geography_code, r.child_key as k
    from site_registered as r
    inner join placed as p on p.financial_year = r.financial_year and p.centre_id = r.centre_id
),

-- Contact units per child and geography: contact days (the same day at two sites of a
-- geography is one contact day there) and attendances (each is one row of the extract, so
-- they add up across sites as they are). Nearly every child-day is at one centre
-- (stg_contact_dates.centres = 1): those are counted per site and child, then added up over
-- each geography's sites. Only the rare days at two or more centres (stg_shared_contact_days)
-- are read site by site and spread over the geographies, where they are compared date by
-- date. Spreading every contact day over every geography made this the widest aggregation
-- of the catalogue.
one_site_units as (
    select s.financial_year, s.centre_id, s.lot, s.provider, s.early_help_area, d.child_key,
        count(*) as days, sum(d.attendances) as attendances
    from stg_contact_dates as d
    inner join site_cost as s
        on s.centre_id = d.centre_id
        and d.contact_date between s.period_start and s.period_end
    where d.centres = 1
    group by
        s.financial_year, s.centre_id, s.lot, s.provider, s.early_help_area, d.child_key
),

-- Each row under the five geographies its site rolls up to (as in `placed`), by unnesting
-- the site's codes: a join to `placed` would build its hash table from these many rows.
several_site_rows as (
    select
        s.financial_year,
        d.child_key,
        d.contact_date,
        d.attendances,
        unnest(['centre', 'lot', 'provider', 'eh_area', 'deployment']) as geography_type,
        unnest([s.centre_id, s.lot, s.provider, s.early_help_area, 'ALL']) as geography_code
    from stg_shared_contact_days as d
    inner join site_cost as s
        on s.centre_id = d.centre_id
        and d.contact_date between s.period_start and s.period_end
),

several_site_units as (
    select financial_year, geography_type, geography_code, child_key,
        count(distinct contact_date) as days, sum(attendances) as attendances
    from several_site_rows
    group by 1, 2, 3, 4
),

contact_units as (
    select financial_year, geography_type, geography_code, child_key, sum(days) as days,
        sum(attendances) as attendances
    from (
        select
            financial_year,
            unnest(['centre', 'lot', 'provider', 'eh_area', 'deployment']) as geography_type,
            unnest([centre_id, lot, provider, early_help_area, 'ALL']) as geography_code,
            child_key,
            days,
            attendances
        from one_site_units
        union all
        select * from several_site_units
    ) as u
    group by 1, 2, 3, 4
),

-- VFM-02 and VFM-03 counted in one pass over the children (a second reference to
-- contact_units would compute it again).
unit_counts as (
    select
        cu.financial_year,
        cu.geography_type,
        cu.geography_code,
        count(*) as contacted,
        count(*) filter (
            where case when params.contact_unit = 'attendance' then cu.attendances
                else cu.days end >= params.sustained_min_contacts
        ) as sustained
    from contact_units as cu
    cross join params
    group by 1, 2, 3
),

attendance_rows as (
    select p.financial_year, p.geography_type, p.geography_code, sum(a.n) as n
    from site_attendances as a
    inner join placed as p on p.financial_year = a.financial_year and p.centre_id = a.centre_id
    group by 1, 2, 3
),

targeted_families as (
    select distinct p.financial_year, p.geography_type, p.geography_code, f.family_key as k
    from site_families as f
    inner join placed as p on p.financial_year = f.financial_year and p.centre_id = f.centre_id
),

-- VFM-06a: children whose 2–2½ year ASQ-3 review in the year is at or above the cut-off
-- in all five domains, with sustained engagement (N contact days, or attendances with
-- contact_unit = attendance) at the unit's sites before the review.
asq_at_expected as (
    select y.financial_year, f.child_key, f.review_date as before_date
    from asq3_facts as f
    inner join years as y on y.period_end = f.period_end
    where f.period_type = 'fy'
        and f.communication_ok and f.gross_motor_ok and f.fine_motor_ok
        and f.problem_solving_ok and f.personal_social_ok
),

-- VFM-06b: pupils with a good level of development whose EYFSP academic year ends (31
-- August) in the financial year, with sustained engagement at the unit's sites before
-- Reception began (1 September of the academic year's first calendar year).
eyfsp_gld as (
    select distinct
        y.financial_year,
        l.child_key,
        make_date(cast(substr(e.academic_year, 1, 4) as int), 9, 1) as before_date
    from eyfsp as e
    inner join person_link as l on l.source = e._source and l.source_person_key = e.key_upn
    inner join years as y
        on make_date(cast(substr(e.academic_year, 1, 4) as int) + 1, 8, 31)
            between y.period_start and y.period_end
    where e.complete and e.gld
),

outcome_children as (
    select 'VFM-06a' as metric_id, * from asq_at_expected
    union all
    select 'VFM-06b', * from eyfsp_gld
),

-- Their contact days before the outcome at each geography's sites (a day at two sites of a
-- geography is one day there), then whether that reaches N.
outcome_days as (
    select distinct
        o.metric_id,
        o.financial_year,
        p.geography_type,
        p.geography_code,
        o.child_key,
        d.contact_date,
        d.centre_id,
        d.attendances
    from outcome_children as o
    inner join stg_contact_days as d
        on d.child_key = o.child_key and d.contact_date < o.before_date
    inner join placed as p on p.financial_year = o.financial_year and p.centre_id = d.centre_id
),

outcome_engaged as (
    select o.metric_id, o.financial_year, o.geography_type, o.geography_code, o.child_key
    from outcome_days as o
    cross join params
    group by
        o.metric_id, o.financial_year, o.geography_type, o.geography_code, o.child_key,
        params.contact_unit, params.sustained_min_contacts
    having case when params.contact_unit = 'attendance' then sum(o.attendances)
        else count(distinct o.contact_date) end >= params.sustained_min_contacts
),

denominators as (
    select financial_year, geography_type, geography_code, 'VFM-01' as metric_id, count(*) as n
    from registered group by 1, 2, 3
    union all
    select financial_year, geography_type, geography_code,
        unnest(['VFM-02', 'VFM-03']), unnest([contacted, sustained])
    from unit_counts
    union all
    select financial_year, geography_type, geography_code, 'VFM-04', n from attendance_rows
    union all
    select financial_year, geography_type, geography_code, 'VFM-05', count(*)
    from targeted_families group by 1, 2, 3
    union all
    select financial_year, geography_type, geography_code, metric_id, count(*)
    from outcome_engaged group by 1, 2, 3, 4
),

metrics as (
    select * from (
        values ('VFM-01'), ('VFM-02'), ('VFM-03'), ('VFM-04'), ('VFM-05'), ('VFM-06a'),
            ('VFM-06b')
    ) as m(metric_id)
)

select
    m.metric_id,
    'fy' as period_type,
    c.period_start,
    c.period_end,
    c.geography_type,
    c.geography_code,
    'all' as breakdown_type,
    'all' as breakdown_value,
    c.pence as numerator,
    coalesce(d.n, 0) as denominator,
    cast(null as bigint) as comparison_numerator,
    cast(null as bigint) as comparison_denominator,
    '' as quality_flags
from costs as c
cross join metrics as m
left join denominators as d
    on d.financial_year = c.financial_year
    and d.geography_type = c.geography_type
    and d.geography_code = c.geography_code
    and d.metric_id = m.metric_id
