-- Everything a residence LSOA decides, for every (lsoa11, lsoa21) pair that a person record
-- carries or the population estimate covers: reach area (and so centre, early help area and lot), local authority, and the
-- deprivation decile and band in the configured index and vintage (metrics.md §1.1).
with params as (
    select * from metric_params
),

pairs as (
    select distinct lsoa11, lsoa21 from chis
    union
    select distinct lsoa11, lsoa21 from registrations
    union
    select distinct lsoa11, lsoa21 from eyfsp
    union
    select distinct lsoa11, lsoa21 from sc_person_identifiers
    union
    select distinct lsoa11, lsoa21 from early_help_episodes
    union
    -- every LSOA of the population estimate, for the rates by deprivation band
    select distinct lk.lsoa11cd, lk.lsoa21cd
    from lsoa_population as pop
    inner join lsoa_lookup as lk on lk.lsoa21cd = pop.lsoa_code
    where pop.lsoa_vintage = 2021
),

reach as (
    select
        pairs.lsoa11,
        pairs.lsoa21,
        min(ra.centre_id) as reach_area,
        count(distinct ra.centre_id) as reach_areas_matched
    from pairs
    inner join reach_areas as ra
        on (ra.lsoa_vintage = 2021 and ra.lsoa_code = pairs.lsoa21)
        or (ra.lsoa_vintage = 2011 and ra.lsoa_code = pairs.lsoa11)
    group by pairs.lsoa11, pairs.lsoa21
),

la as (
    select
        lsoa21cd,
        min(lad22cd) as la_code
    from lsoa_lookup
    group by lsoa21cd
),

la11 as (
    select
        lsoa11cd,
        min(lad22cd) as la_code
    from lsoa_lookup
    group by lsoa11cd
),

deprivation as (
    select
        pairs.lsoa11,
        pairs.lsoa21,
        case when params.deprivation_index = 'imd' then iod.imd_decile else iod.idaci_decile end
            as deprivation_decile
    from pairs
    cross join params
    inner join iod
        on (params.deprivation_vintage = 'iod2019' and iod.lsoa_vintage = 2011
            and iod.lsoa_code = pairs.lsoa11)
        or (params.deprivation_vintage = 'iod2025' and iod.lsoa_vintage = 2021
            and iod.lsoa_code = pairs.lsoa21)
)

select
    pairs.lsoa11,
    pairs.lsoa21,
    reach.reach_area,
    coalesce(reach.reach_areas_matched, 0) as reach_areas_matched,
    centres.early_help_area as eh_area,
    centres.lot,
    case
        when pairs.lsoa11 is null and pairs.lsoa21 is null then 'UNKNOWN'
        else coalesce(la.la_code, la11.la_code, 'UNKNOWN')
    end as la_code,
    deprivation.deprivation_decile,
    case
        when deprivation.deprivation_decile is null then 'unknown'
        when array_has(params.most_deprived_deciles, cast(deprivation.deprivation_decile as bigint))
            then 'most_deprived_30'
        else 'other'
    end as deprivation_band
from pairs
cross join params
left join reach
    on (reach.lsoa11 is not distinct from pairs.lsoa11)
    and (reach.lsoa21 is not distinct from pairs.lsoa21)
left join centres on centres.centre_id = reach.reach_area
left join la on la.lsoa21cd = pairs.lsoa21
left join la11 on la11.lsoa11cd = pairs.lsoa11
left join deprivation
    on (deprivation.lsoa11 is not distinct from pairs.lsoa11)
    and (deprivation.lsoa21 is not distinct from pairs.lsoa21)
