-- VFM-01 … VFM-06 (value-for-money.md §1–2): the cost attributable to each site in a
-- financial year divided by activity at the site in that year; and the same for each lot,
-- provider, early help area and the deployment (costs summed over their sites, children
-- counted once however many of the sites they used).
--
-- Cost of a site = its direct costs (centre_costs) + its share of the CENTRAL costs
-- (apportioned by reach-area under-fives at the year end, largest remainder to the penny)
-- + its share of its lot's contract, prorated by the days the contract ran in the year,
-- when none of the lot's sites reports commissioned costs that year (otherwise the contract
-- is already inside centre_costs). The numerator is that cost in pence, so the counts of
-- the catalogue stay whole numbers; value = pence / 100 / denominator. VFM-06a/b divide
-- the same cost by children with good outcomes (ASQ-3 all five domains; EYFSP GLD) who had
-- sustained engagement at the unit's sites before the outcome was measured: all of the
-- cost over those children, with no claim that the unit caused the outcome.
with params as (
    select * from metric_params
),

years as (
    select
        period_start,
        period_end,
        concat(
            cast(extract(year from period_start) as varchar), '-',
            substr(cast(extract(year from period_start) + 1 as varchar), 3, 2)
        ) as financial_year
    from stg_periods
    where period_type = 'fy'
),

-- Sites that carry costs: centres and hubs open at any time in the year.
sites as (
    select
        y.financial_year,
        y.period_start,
        y.period_end,
        c.centre_id,
        coalesce(c.lot, 'NONE') as lot,
        c.provider,
        c.early_help_area
    from years as y
    cross join centres as c
    where c.open_date <= y.period_end
        and (c.close_date is null or c.close_date >= y.period_start)
        and coalesce(c.site_type, 'centre') in ('centre', 'hub')
),

under_fives as (
    select period_end, reach_area, count(*) as children
    from int_reach_facts
    where period_type = 'fy'
    group by period_end, reach_area
),

driver as (
    select
        s.*,
        coalesce(u.children, 0) as children
    from sites as s
    left join under_fives as u on u.period_end = s.period_end and u.reach_area = s.centre_id
),

-- Every site weighs 1 when no site has any under-fives (so the costs still add up).
weights as (
    select
        d.*,
        case when sum(d.children) over (partition by d.financial_year) = 0 then 1
            else d.children end as weight
    from driver as d
),

central as (
    select financial_year, cast(round(total * 100) as bigint) as pence
    from centre_costs
    where centre_id = 'CENTRAL'
),

central_exact as (
    select
        w.financial_year,
        w.centre_id,
        c.pence,
        -- floor of the exact share, written so DataFusion and DuckDB (whose / on integers
        -- divides as floats) agree
        cast(floor(cast(c.pence * w.weight as double)
            / sum(w.weight) over (partition by w.financial_year)) as bigint) as floor_share,
        c.pence * w.weight % sum(w.weight) over (partition by w.financial_year) as remainder
    from weights as w
    inner join central as c on c.financial_year = w.financial_year
),

central_ranked as (
    select
        e.*,
        e.pence - sum(e.floor_share) over (partition by e.financial_year) as leftover,
        row_number() over (
            partition by e.financial_year order by e.remainder desc, e.centre_id
        ) as remainder_rank
    from central_exact as e
),

central_share as (
    select
        financial_year,
        centre_id,
        floor_share + case when remainder_rank <= leftover then 1 else 0 end as pence
    from central_ranked
),

-- Contracts in force during the year, prorated by days, for lots none of whose sites
-- reports commissioned costs that year.
lot_commissioned as (
    select s.financial_year, s.lot, sum(coalesce(cc.commissioned, 0)) as commissioned
    from sites as s
    left join centre_costs as cc
        on cc.centre_id = s.centre_id and cc.financial_year = s.financial_year
    group by s.financial_year, s.lot
),

contract_year as (
    select
        y.financial_year,
        k.lot,
        cast(round(
            k.annual_value * 100
            * (least(k.end_date, y.period_end) - greatest(k.start_date, y.period_start) + 1)
            / (y.period_end - y.period_start + 1)
        ) as bigint) as pence,
        k.centre_ids
    from contracts as k
    cross join years as y
    where k.start_date <= y.period_end and k.end_date >= y.period_start
),

contract_sites as (
    select
        cy.financial_year,
        cy.lot,
        cy.pence,
        w.centre_id,
        w.weight
    from contract_year as cy
    inner join lot_commissioned as lc
        on lc.financial_year = cy.financial_year and lc.lot = cy.lot
    inner join weights as w
        on w.financial_year = cy.financial_year
        and strpos(concat(';', replace(cy.centre_ids, ' ', ''), ';'), concat(';', w.centre_id, ';')) > 0
    where lc.commissioned = 0
),

contract_exact as (
    select
        c.*,
        cast(floor(cast(c.pence * c.weight as double)
            / sum(c.weight) over (partition by c.financial_year, c.lot)) as bigint) as floor_share,
        c.pence * c.weight % sum(c.weight) over (partition by c.financial_year, c.lot) as remainder
    from contract_sites as c
),

contract_share as (
    select
        financial_year,
        centre_id,
        sum(floor_share + case when remainder_rank <= leftover then 1 else 0 end) as pence
    from (
        select
            e.*,
            e.pence - sum(e.floor_share) over (partition by e.financial_year, e.lot) as leftover,
            row_number() over (
                partition by e.financial_year, e.lot order by e.remainder desc, e.centre_id
            ) as remainder_rank
        from contract_exact as e
    ) as ranked
    group by financial_year, centre_id
),

site_cost as (
    select
        s.*,
        coalesce(cast(round(cc.total * 100) as bigint), 0)
            + coalesce(cs.pence, 0) + coalesce(k.pence, 0) as pence
    from sites as s
    left join centre_costs as cc
        on cc.centre_id = s.centre_id and cc.financial_year = s.financial_year
    left join central_share as cs
        on cs.centre_id = s.centre_id and cs.financial_year = s.financial_year
    left join contract_share as k
        on k.centre_id = s.centre_id and k.financial_year = s.financial_year
    -- a year with no finance data at all has no cost to report
    where cc.total is not null or cs.pence is not null or k.pence is not null
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

site_contact_days as (
    select s.financial_year, s.centre_id, d.child_key, d.contact_date, d.attendances
    from site_cost as s
    inner join stg_contact_days as d
        on d.centre_id = s.centre_id
        and d.contact_date between s.period_start and s.period_end
),

site_families as (
    select distinct s.financial_year, s.centre_id, a.family_key
    from site_cost as s
    inner join attendances as a
        on a.centre_id = s.centre_id
        and a.session_date between s.period_start and s.period_end
    inner join activities as act on act.activity_code = a.activity_code
    where act.service_type = 'targeted' and a.family_key is not null
),

site_attendances as (
    select s.financial_year, s.centre_id, count(*) as n
    from site_cost as s
    inner join attendances as a
        on a.centre_id = s.centre_id
        and a.session_date between s.period_start and s.period_end
    group by s.financial_year, s.centre_id
),

registered as (
    select distinct p.financial_year, p.geography_type, p.geography_code, r.child_key as k
    from site_registered as r
    inner join placed as p on p.financial_year = r.financial_year and p.centre_id = r.centre_id
),

-- Contact days per person and geography (the same day at two sites of a geography is one
-- contact day there). Nearly every child-day is at one site: those are counted per site and
-- child first and then added up over each geography's sites; only the rare days at two or
-- more sites are spread over geographies and compared date by date. Spreading every
-- contact day over every geography made this the widest aggregation of the catalogue.
child_dates as (
    select financial_year, child_key, contact_date, count(*) as sites,
        min(centre_id) as centre_id
    from site_contact_days
    group by financial_year, child_key, contact_date
),

one_site_days as (
    select financial_year, centre_id, child_key, count(*) as days
    from child_dates
    where sites = 1
    group by financial_year, centre_id, child_key
),

several_site_days as (
    select distinct p.financial_year, p.geography_type, p.geography_code, d.child_key,
        d.contact_date
    from child_dates as c
    inner join site_contact_days as d
        on d.financial_year = c.financial_year
        and d.child_key = c.child_key
        and d.contact_date = c.contact_date
    inner join placed as p on p.financial_year = d.financial_year and p.centre_id = d.centre_id
    where c.sites > 1
),

geography_days as (
    select p.financial_year, p.geography_type, p.geography_code, o.child_key, o.days
    from one_site_days as o
    inner join placed as p on p.financial_year = o.financial_year and p.centre_id = o.centre_id
    union all
    select financial_year, geography_type, geography_code, child_key, count(*) as days
    from several_site_days
    group by financial_year, geography_type, geography_code, child_key
),

-- Attendances add up across sites as they are (each is one row of the extract).
geography_attendances as (
    select p.financial_year, p.geography_type, p.geography_code, d.child_key,
        sum(d.attendances) as attendances
    from (
        select financial_year, centre_id, child_key, sum(attendances) as attendances
        from site_contact_days
        group by financial_year, centre_id, child_key
    ) as d
    inner join placed as p on p.financial_year = d.financial_year and p.centre_id = d.centre_id
    group by 1, 2, 3, 4
),

contact_units as (
    select
        a.financial_year,
        a.geography_type,
        a.geography_code,
        a.child_key,
        coalesce(sum(g.days), 0) as days,
        min(a.attendances) as attendances
    from geography_attendances as a
    left join geography_days as g
        on g.financial_year = a.financial_year
        and g.geography_type = a.geography_type
        and g.geography_code = a.geography_code
        and g.child_key = a.child_key
    group by 1, 2, 3, 4
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
    from int_asq3_facts as f
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
    select financial_year, geography_type, geography_code, 'VFM-02', count(*)
    from contact_units group by 1, 2, 3
    union all
    select cu.financial_year, cu.geography_type, cu.geography_code, 'VFM-03', count(*)
    from contact_units as cu
    cross join params
    where case when params.contact_unit = 'attendance' then cu.attendances else cu.days end
        >= params.sustained_min_contacts
    group by 1, 2, 3
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
