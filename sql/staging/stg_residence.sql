-- Where each child lived on each date a metric needs (metrics.md §1.4 reading 4): the
-- register row open on that date (the latest-starting if several), else the latest row
-- starting on or before it, else the earliest row; with everything that LSOA decides.
with candidates as (
    select
        d.child_key,
        d.as_of,
        r.lsoa11,
        r.lsoa21,
        r.registered_from,
        case
            when coalesce(r.registered_from, date '1900-01-01') <= d.as_of
                and (r.registered_to is null or d.as_of <= r.registered_to) then 1
            when coalesce(r.registered_from, date '1900-01-01') <= d.as_of then 2
            else 3
        end as preference
    from stg_residence_dates as d
    inner join stg_chis_rows as r on r.child_key = d.child_key
),

ranked as (
    select
        *,
        row_number() over (
            partition by child_key, as_of
            order by
                preference,
                case when preference < 3 then registered_from end desc nulls last,
                registered_from asc nulls first,
                lsoa21,
                lsoa11
        ) as rank_in_child
    from candidates
)

select
    ranked.child_key,
    ranked.as_of,
    ranked.lsoa11,
    ranked.lsoa21,
    a.reach_area,
    a.eh_area,
    a.lot,
    coalesce(a.la_code, 'UNKNOWN') as la_code,
    a.deprivation_decile,
    coalesce(a.deprivation_band, 'unknown') as deprivation_band
from ranked
left join stg_lsoa_attributes as a
    on (a.lsoa11 is not distinct from ranked.lsoa11)
    and (a.lsoa21 is not distinct from ranked.lsoa21)
where ranked.rank_in_child = 1
