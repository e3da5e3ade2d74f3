-- One row per period, review and child in the review's cohort (metrics.md §4): DOB + cohort
-- age falls in the period. `on_time` says whether the first qualifying contact (of the
-- review's type, face to face where required, on or after the DOB and the minimum age) was
-- dated by DOB + deadline (HV-03: after the C2 deadline). Also the feeding status at the
-- first 6–8 week review and whether an ASQ-3 matched the 2–2½ year review. Residence is
-- taken on the cohort date.
--
-- Only the periods ending on or after recompute_from(): an incremental build keeps the
-- earlier ones (every period in a full build; see [incremental] in sql/metrics.toml).
with scoped_periods as (
    select pr.*
    from stg_periods as pr
    where pr.period_end >= recompute_from()
),

params as (
    select * from metric_params
),

contacts as (
    select
        link.child_key,
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
    select distinct f.child_key
    from first_contact as f
    cross join params
    inner join asq_linked as a on a.child_key = f.child_key
    where f.review = 'HV-07'
        and a.review_date between
            f.first_date - cast(
                concat(cast(params.asq_review_match_tolerance_days as varchar), ' days') as interval)
            and f.first_date + cast(
                concat(cast(params.asq_review_match_tolerance_days as varchar), ' days') as interval)
)

select
    pr.period_type,
    pr.period_start,
    pr.period_end,
    h.review,
    h.child_key,
    h.cohort_date,
    f.first_date,
    coalesce(
        case
            when h.deadline_date is not null then f.first_date <= h.deadline_date
            else f.first_date > cast(h.date_of_birth + cast(c2.deadline as interval) as date)
        end,
        false
    ) as on_time,
    asq.child_key is not null as asq_at_review,
    case when h.review = 'HV-04' then fd.feeding_status end as feeding_status,
    c.sex,
    c.ethnicity_group,
    res.reach_area,
    res.eh_area,
    res.lot,
    coalesce(res.la_code, 'UNKNOWN') as la_code,
    coalesce(res.deprivation_band, 'unknown') as deprivation_band
from scoped_periods as pr
inner join stg_hv_cohorts as h
    on h.cohort_date between pr.period_start and pr.period_end
cross join c2_deadline as c2
inner join stg_children as c on c.child_key = h.child_key
left join first_contact as f
    on f.review = h.review
    and f.child_key = h.child_key
left join feeding as fd on fd.child_key = h.child_key
left join asq_near_review as asq on asq.child_key = h.child_key and h.review = 'HV-07'
left join stg_residence as res on res.child_key = h.child_key and res.as_of = h.cohort_date
where pr.period_type in ('quarter', 'fy')
