-- DQ-01 and DQ-03 (metrics.md §6.1): registered children under 5 at the period end, placed
-- by residence (the register's if linked to it, else the registration's own LSOA): how many
-- are matched to the child health register, and how many have a postcode that resolved to
-- an LSOA. DQ-02: children's centre rows (registrations, attendances) quarantined, charged
-- to the centre they name and the period of their own date (registration or session date),
-- over all such rows read; only the quarantine of files whose rows are in the lake now
-- counts (a replaced snapshot's rejections go with it). A row naming no known centre counts
-- for the deployment only; a row whose date does not parse cannot be placed in a period.
--
-- Only the periods ending on or after recompute_from(): an incremental build keeps the
-- earlier ones (every period in a full build; see [incremental] in sql/metrics.toml).
with periods as (
    select * from stg_periods where period_end >= recompute_from()
),

registered as (
    select
        pr.period_type,
        pr.period_start,
        pr.period_end,
        reg.child_key,
        min(reg.date_of_birth) as date_of_birth,
        -- the registration's own LSOA, deterministic when a child has several
        min(reg.lsoa11) as lsoa11,
        min(reg.lsoa21) as lsoa21,
        bool_or(reg.lsoa11 is not null or reg.lsoa21 is not null) as placed_in_lsoa
    from periods as pr
    inner join stg_registered_children as reg on reg.registration_date <= pr.period_end
    group by pr.period_type, pr.period_start, pr.period_end, reg.child_key
),

facts as (
    select
        r.*,
        c.child_key is not null as in_register,
        coalesce(res.reach_area, a.reach_area) as reach_area,
        coalesce(res.eh_area, a.eh_area) as eh_area,
        coalesce(res.lot, a.lot) as lot,
        coalesce(res.la_code, a.la_code, 'UNKNOWN') as la_code
    from registered as r
    left join stg_children as c on c.child_key = r.child_key
    left join stg_residence as res on res.child_key = r.child_key and res.as_of = r.period_end
    left join stg_lsoa_attributes as a
        on (a.lsoa11 is not distinct from r.lsoa11)
        and (a.lsoa21 is not distinct from r.lsoa21)
    where coalesce(c.date_of_birth, r.date_of_birth) + interval '5 years' > r.period_end
),

current_files as (
    select distinct _source as source, _file_sha256 as file_sha256 from registrations
    union
    select distinct _source, _file_sha256 from attendances
),

-- A row with several faults is one row.
quarantined_rows as (
    select distinct q.file_sha256, q.row_number, q.centre_id, q.record_date
    from quarantine as q
    inner join current_files as f
        on f.source = q.source and f.file_sha256 = q.file_sha256
    where q.record_date is not null
),

centre_rows as (
    select centre_id, registration_date as record_date, 0 as quarantined from registrations
    union all
    select centre_id, session_date, 0 from attendances
    union all
    select centre_id, record_date, 1 from quarantined_rows
),

-- Periods start on the first of a month and end on a month end: rows by month first.
centre_months as (
    select
        centre_id,
        cast(date_trunc('month', record_date) as date) as month_start,
        sum(quarantined) as quarantined,
        count(*) as rows_read
    from centre_rows
    group by 1, 2
),

dq02_fine as (
    select
        pr.period_type,
        pr.period_start,
        pr.period_end,
        coalesce(c.centre_id, '') as centre_id,
        sum(m.quarantined) as quarantined,
        sum(m.rows_read) as rows_read
    from periods as pr
    inner join centre_months as m
        on m.month_start between
            case when pr.period_type = 'rolling12' then pr.window_start else pr.period_start end
            and pr.period_end
    left join centres as c on c.centre_id = m.centre_id
    group by 1, 2, 3, 4
),

dq02 as (
    select
        'DQ-02' as metric_id,
        period_type,
        period_start,
        period_end,
        g.geography_type,
        case g.geography_type when 'deployment' then 'ALL' else f.centre_id end
            as geography_code,
        sum(quarantined) as numerator,
        sum(rows_read) as denominator
    from dq02_fine as f
    cross join (values ('deployment'), ('centre')) as g(geography_type)
    where g.geography_type = 'deployment' or f.centre_id <> ''
    group by 1, 2, 3, 4, 5, 6
),

-- Counted at the finest grain first, then spread over the geographies.
fine as (
    select
        period_type,
        period_start,
        period_end,
        la_code,
        reach_area,
        eh_area,
        lot,
        count(*) filter (where in_register) as in_register,
        count(*) filter (where placed_in_lsoa) as placed_in_lsoa,
        count(*) as registered
    from facts
    group by period_type, period_start, period_end, la_code, reach_area, eh_area, lot
),

placed as (
    select
        g.geography_type,
        case g.geography_type
            when 'deployment' then 'ALL'
            when 'la' then f.la_code
            when 'reach_area' then f.reach_area
            when 'eh_area' then f.eh_area
            when 'lot' then f.lot
        end as geography_code,
        f.*
    from fine as f
    cross join (values ('deployment'), ('la'), ('reach_area'), ('eh_area'), ('lot'))
        as g(geography_type)
)

select
    m.metric_id,
    p.period_type,
    p.period_start,
    p.period_end,
    p.geography_type,
    p.geography_code,
    'all' as breakdown_type,
    'all' as breakdown_value,
    sum(case when m.metric_id = 'DQ-01' then p.in_register else p.placed_in_lsoa end) as numerator,
    sum(p.registered) as denominator,
    cast(null as bigint) as comparison_numerator,
    cast(null as bigint) as comparison_denominator,
    '' as quality_flags
from placed as p
cross join (values ('DQ-01'), ('DQ-03')) as m(metric_id)
where p.geography_code is not null
group by m.metric_id, p.period_type, p.period_start, p.period_end, p.geography_type, p.geography_code
union all
select
    metric_id,
    period_type,
    period_start,
    period_end,
    geography_type,
    geography_code,
    'all',
    'all',
    numerator,
    denominator,
    cast(null as bigint),
    cast(null as bigint),
    ''
from dq02
