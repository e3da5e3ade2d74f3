-- Where each child lived on each date a metric needs (metrics.md §1.4 reading 4): the
-- register row open on that date (the latest-starting if several), else the latest row
-- starting on or before it, else the earliest row; with everything that LSOA decides.
-- Chosen with grouped minima rather than a window sort, so it stays small and spills.
with candidates as (
    select
        d.child_key,
        d.as_of,
        r.lsoa11,
        r.lsoa21,
        coalesce(r.registered_from, date '1900-01-01') as registered_from,
        case
            when coalesce(r.registered_from, date '1900-01-01') <= d.as_of
                and (r.registered_to is null or d.as_of <= r.registered_to) then 1
            when coalesce(r.registered_from, date '1900-01-01') <= d.as_of then 2
            else 3
        end as preference
    from stg_residence_dates as d
    inner join stg_chis_rows as r on r.child_key = d.child_key
    -- only the dates an incremental build recomputes (all of them in a full build)
    where d.as_of >= recompute_from()
),

best_preference as (
    select
        child_key,
        as_of,
        min(preference) as preference
    from candidates
    group by child_key, as_of
),

preferred as (
    select c.*
    from candidates as c
    inner join best_preference as b
        on b.child_key = c.child_key
        and b.as_of = c.as_of
        and b.preference = c.preference
),

-- Open or started rows: the latest start; only future rows: the earliest.
best_start as (
    select
        child_key,
        as_of,
        case
            when min(preference) < 3 then max(registered_from)
            else min(registered_from)
        end as registered_from
    from preferred
    group by child_key, as_of
),

-- Two rows starting the same day: the lowest LSOA pair, deterministically.
chosen as (
    select
        p.child_key,
        p.as_of,
        min(concat(coalesce(p.lsoa21, ''), '|', coalesce(p.lsoa11, ''))) as lsoa_pair
    from preferred as p
    inner join best_start as b
        on b.child_key = p.child_key
        and b.as_of = p.as_of
        and b.registered_from = p.registered_from
    group by p.child_key, p.as_of
),

residence as (
    select
        child_key,
        as_of,
        nullif(split_part(lsoa_pair, '|', 2), '') as lsoa11,
        nullif(split_part(lsoa_pair, '|', 1), '') as lsoa21
    from chosen
)

select
    residence.child_key,
    residence.as_of,
    residence.lsoa11,
    residence.lsoa21,
    a.reach_area,
    a.eh_area,
    a.lot,
    coalesce(a.la_code, 'UNKNOWN') as la_code,
    a.deprivation_decile,
    coalesce(a.deprivation_band, 'unknown') as deprivation_band
from residence
left join stg_lsoa_attributes as a
    on (a.lsoa11 is not distinct from residence.lsoa11)
    and (a.lsoa21 is not distinct from residence.lsoa21)
