-- When each child first had sustained engagement: the first contact unit at which the
-- sustained_min_contacts most recent units all fall within sustained_window_months
-- (metrics.md §3.3, "≥ N contact days within any 12-month window"). Units are contact
-- days, or attendances with contact_unit = "attendance", numbered per child in
-- stg_contact_units; unit k is compared with unit k − N + 1 by an equality join (no range
-- join, no per-child quadratic work). Children never sustained have no row.
with params as (
    select
        sustained_min_contacts,
        cast(concat(cast(sustained_window_months as varchar), ' months') as interval) as window_length
    from metric_params
),

-- For unit k, the unit N − 1 before it (computed first: DataFusion 55 drops a join
-- condition that mixes in a third table's column).
looking_back as (
    select
        n.child_key,
        n.contact_date,
        n.k - p.sustained_min_contacts + 1 as back_k
    from stg_contact_units as n
    cross join params as p
),

paired as (
    select
        later.child_key,
        later.contact_date,
        earlier.contact_date as earliest_in_run
    from looking_back as later
    inner join stg_contact_units as earlier
        on earlier.child_key = later.child_key
        and earlier.k = later.back_k
)

select
    paired.child_key,
    min(paired.contact_date) as first_sustained_date
from paired
cross join params as p
where paired.earliest_in_run > paired.contact_date - p.window_length
group by paired.child_key
