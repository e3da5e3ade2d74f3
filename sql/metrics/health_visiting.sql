-- HV-01 … HV-11 (metrics.md §4) from int_hv_facts: each review's on-time share of its
-- cohort, HV-08 (ASQ-3 used at on-time 2–2½ year reviews), breastfeeding at 6–8 weeks with
-- its coverage (HV-09/HV-10 flagged low_coverage, not published, when HV-11 is below the
-- threshold), and HV-01 antenatal contacts as a count.
--
-- Only the periods ending on or after recompute_from(): an incremental build keeps the
-- earlier ones (every period in a full build; see [incremental] in sql/metrics.toml).
with hv_facts as (
    select t.*
    from int_hv_facts as t
    where t.period_end >= recompute_from()
),

scoped_periods as (
    select t.*
    from stg_periods as t
    where t.period_end >= recompute_from()
),

params as (
    select * from metric_params
),

measures as (
    select
        case m.kind when 'review' then f.review else m.kind end as metric_id,
        f.*,
        case m.kind
            when 'review' then f.on_time
            when 'HV-08' then f.asq_at_review
            when 'HV-09' then coalesce(f.feeding_status in ('total', 'partial'), false)
            when 'HV-10' then coalesce(f.feeding_status = 'total', false)
            when 'HV-11' then coalesce(f.feeding_status in ('total', 'partial', 'none'), false)
        end as ok
    from hv_facts as f
    cross join (values ('review'), ('HV-08'), ('HV-09'), ('HV-10'), ('HV-11')) as m(kind)
    where m.kind = 'review'
        or (m.kind = 'HV-08' and f.review = 'HV-07' and f.on_time)
        or (m.kind in ('HV-09', 'HV-10', 'HV-11') and f.review = 'HV-04')
),

-- Counted first at the finest grain (each combination of places and groups), then spread
-- over the geographies and breakdowns: the counts add up, and the spreading multiplies a few
-- thousand rows instead of every child.
fine as (
    select
        metric_id,
        period_type,
        period_start,
        period_end,
        la_code,
        reach_area,
        eh_area,
        lot,
        deprivation_band,
        sex,
        ethnicity_group,
        count(*) filter (where ok) as numerator,
        count(*) as denominator
    from measures
    group by
        metric_id, period_type, period_start, period_end, la_code, reach_area, eh_area, lot,
        deprivation_band, sex, ethnicity_group
),

placed as (
    select
        g.geography_type,
        case g.geography_type
            when 'deployment' then 'ALL'
            when 'la' then m.la_code
            when 'reach_area' then m.reach_area
            when 'eh_area' then m.eh_area
            when 'lot' then m.lot
        end as geography_code,
        b.breakdown_type,
        case b.breakdown_type
            when 'all' then 'all'
            when 'deprivation' then m.deprivation_band
            when 'sex' then m.sex
            when 'ethnicity_group' then m.ethnicity_group
        end as breakdown_value,
        m.*
    from fine as m
    cross join (values ('deployment'), ('la'), ('reach_area'), ('eh_area'), ('lot'))
        as g(geography_type)
    cross join (values ('all'), ('deprivation'), ('sex'), ('ethnicity_group'))
        as b(breakdown_type)
),

counted as (
    select
        metric_id,
        period_type,
        period_start,
        period_end,
        geography_type,
        geography_code,
        breakdown_type,
        breakdown_value,
        sum(numerator) as numerator,
        sum(denominator) as denominator
    from placed
    where geography_code is not null
    group by
        metric_id, period_type, period_start, period_end,
        geography_type, geography_code, breakdown_type, breakdown_value
),

coverage as (
    select
        period_type,
        period_end,
        geography_type,
        geography_code,
        breakdown_type,
        breakdown_value,
        cast(numerator as double) / nullif(denominator, 0) as coverage
    from counted
    where metric_id = 'HV-11'
),

antenatal as (
    select
        pr.period_type,
        pr.period_start,
        pr.period_end,
        count(distinct c.key_nhs) as mothers
    from scoped_periods as pr
    inner join hv_contacts as c
        on c.contact_date between pr.period_start and pr.period_end
        and c.contact_type = 'ANTENATAL'
        and c.face_to_face
    where pr.period_type in ('quarter', 'fy')
    group by pr.period_type, pr.period_start, pr.period_end
)

select
    c.metric_id,
    c.period_type,
    c.period_start,
    c.period_end,
    c.geography_type,
    c.geography_code,
    c.breakdown_type,
    c.breakdown_value,
    c.numerator,
    c.denominator,
    cast(null as bigint) as comparison_numerator,
    cast(null as bigint) as comparison_denominator,
    case
        when c.metric_id in ('HV-09', 'HV-10')
            and coalesce(cov.coverage, 0) < params.breastfeeding_coverage_threshold
            then 'low_coverage'
        else ''
    end as quality_flags
from counted as c
cross join params
left join coverage as cov
    on cov.period_type = c.period_type
    and cov.period_end = c.period_end
    and cov.geography_type = c.geography_type
    and cov.geography_code = c.geography_code
    and cov.breakdown_type = c.breakdown_type
    and cov.breakdown_value = c.breakdown_value
union all
select
    'HV-01',
    period_type,
    period_start,
    period_end,
    'deployment',
    'ALL',
    'all',
    'all',
    mothers,
    cast(null as bigint),
    cast(null as bigint),
    cast(null as bigint),
    'approximate'
from antenatal
