-- The cost attributable to each site in each financial year (value-for-money.md §1), in
-- pence: its direct costs (centre_costs) + its share of the CENTRAL costs (apportioned by
-- reach-area under-fives at the year end, largest remainder to the penny) + its share of
-- its lot's contract, prorated by the days the contract ran in the year, when none of the
-- lot's sites reports commissioned costs that year (otherwise the contract is already
-- inside centre_costs). A model of its own: value_for_money reads it many times over, and
-- DataFusion would compute a CTE again at each reference.
with years as (
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
)

select
    financial_year,
    period_start,
    period_end,
    centre_id,
    lot,
    provider,
    early_help_area,
    pence
from site_cost
