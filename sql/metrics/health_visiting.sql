-- HV-01 … HV-11 (metrics.md §4): mandated health visiting reviews by age-reached-in-period
-- cohorts. A child is in review r's cohort for period P when DOB + cohort age falls in P;
-- the numerator needs the first qualifying contact of the review's type (face to face where
-- required, on or after the DOB and the minimum age) dated on or before DOB + deadline.
-- Residence is taken on the cohort date (§1.4 reading 4).
with params as (
    select * from metric_params
),

contacts as (
    select
        link.child_key,
        c.key_nhs,
        c.contact_type,
        c.contact_date,
        coalesce(c.face_to_face, false) as face_to_face,
        c.feeding_status
    from hv_contacts as c
    inner join person_link as link
        on link.source = c._source
        and link.source_person_key = c.key_nhs
),

first_contact as (
    select
        h.review,
        h.child_key,
        min(c.contact_date) as first_date
    from stg_hv_cohorts as h
    inner join contacts as c
        on c.child_key = h.child_key
        and c.contact_type = h.contact_type
        and c.contact_date >= h.date_of_birth
        and (h.earliest_date is null or c.contact_date >= h.earliest_date)
        and (not h.face_to_face_required or c.face_to_face)
    group by h.review, h.child_key
),

-- HV-03 (C3, no deadline of its own) counts visits after the C2 deadline.
c2_deadline as (
    select deadline from stg_hv_reviews where review = 'HV-02'
),

cohort as (
    select
        pr.period_type,
        pr.period_start,
        pr.period_end,
        h.review,
        h.child_key,
        h.cohort_date,
        f.first_date,
        case
            when h.deadline_date is not null then f.first_date <= h.deadline_date
            else f.first_date > cast(h.date_of_birth + cast(c2.deadline as interval) as date)
        end as on_time
    from stg_periods as pr
    inner join stg_hv_cohorts as h
        on h.cohort_date between pr.period_start and pr.period_end
    cross join c2_deadline as c2
    left join first_contact as f
        on f.review = h.review
        and f.child_key = h.child_key
    where pr.period_type in ('quarter', 'fy')
),

-- Feeding status at the first 6–8 week review of each child in the HV-04 cohort.
feeding as (
    select
        f.child_key,
        max(c.feeding_status) as feeding_status
    from first_contact as f
    inner join contacts as c
        on c.child_key = f.child_key
        and c.contact_type = 'REVIEW_6_8W'
        and c.contact_date = f.first_date
    where f.review = 'HV-04'
    group by f.child_key
),

asq_linked as (
    select
        link.child_key,
        a.review_date
    from asq3 as a
    inner join person_link as link
        on link.source = a._source
        and link.source_person_key = a.key_nhs
),

asq_near_review as (
    select distinct
        co.child_key,
        co.first_date
    from cohort as co
    cross join params
    inner join asq_linked as a on a.child_key = co.child_key
    where co.review = 'HV-07'
        and co.on_time
        and a.review_date between
            co.first_date - cast(
                concat(cast(params.asq_review_match_tolerance_days as varchar), ' days') as interval)
            and co.first_date + cast(
                concat(cast(params.asq_review_match_tolerance_days as varchar), ' days') as interval)
),

measures as (
    select review as metric_id, period_type, period_start, period_end, child_key, cohort_date,
        coalesce(on_time, false) as ok, true as counted
    from cohort
    union all
    select 'HV-08' as metric_id, co.period_type, co.period_start, co.period_end, co.child_key,
        co.cohort_date, asq.child_key is not null as ok, true as counted
    from cohort as co
    left join asq_near_review as asq
        on asq.child_key = co.child_key and asq.first_date = co.first_date
    where co.review = 'HV-07' and co.on_time
    union all
    select 'HV-09' as metric_id, co.period_type, co.period_start, co.period_end, co.child_key,
        co.cohort_date, coalesce(fd.feeding_status in ('total', 'partial'), false) as ok, true as counted
    from cohort as co
    left join feeding as fd on fd.child_key = co.child_key
    where co.review = 'HV-04'
    union all
    select 'HV-10' as metric_id, co.period_type, co.period_start, co.period_end, co.child_key,
        co.cohort_date, coalesce(fd.feeding_status = 'total', false) as ok, true as counted
    from cohort as co
    left join feeding as fd on fd.child_key = co.child_key
    where co.review = 'HV-04'
    union all
    select 'HV-11' as metric_id, co.period_type, co.period_start, co.period_end, co.child_key,
        co.cohort_date, coalesce(fd.feeding_status in ('total', 'partial', 'none'), false) as ok, true as counted
    from cohort as co
    left join feeding as fd on fd.child_key = co.child_key
    where co.review = 'HV-04'
),

facts as (
    select
        m.*,
        c.sex,
        c.ethnicity_group,
        res.reach_area,
        res.eh_area,
        res.lot,
        coalesce(res.la_code, 'UNKNOWN') as la_code,
        coalesce(res.deprivation_band, 'unknown') as deprivation_band
    from measures as m
    inner join stg_children as c on c.child_key = m.child_key
    left join stg_residence as res on res.child_key = m.child_key and res.as_of = m.cohort_date
),

placed as (
    select 'deployment' as geography_type, 'ALL' as geography_code, * from facts
    union all
    select 'la' as geography_type, la_code as geography_code, * from facts
    union all
    select 'reach_area' as geography_type, reach_area as geography_code, * from facts where reach_area is not null
    union all
    select 'eh_area' as geography_type, eh_area as geography_code, * from facts where eh_area is not null
    union all
    select 'lot' as geography_type, lot as geography_code, * from facts where lot is not null
),

broken_down as (
    select 'all' as breakdown_type, 'all' as breakdown_value, * from placed
    union all
    select 'deprivation' as breakdown_type, deprivation_band as breakdown_value, * from placed
    union all
    select 'sex' as breakdown_type, sex as breakdown_value, * from placed
    union all
    select 'ethnicity_group' as breakdown_type, ethnicity_group as breakdown_value, * from placed
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
        count(*) filter (where ok) as numerator,
        count(*) as denominator
    from broken_down
    group by
        metric_id, period_type, period_start, period_end,
        geography_type, geography_code, breakdown_type, breakdown_value
),

-- HV-09 and HV-10 are not published where status coverage (HV-11) is below the threshold.
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
    from stg_periods as pr
    inner join contacts as c
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
