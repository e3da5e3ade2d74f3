-- Children aged 0–4 in the ONS mid-year estimate (lsoa_population), summed for the
-- deployment (the local authorities of its reach areas), each local authority and each
-- reach area, in all and by deprivation band of the LSOA: the denominators of the social
-- care and early help rates (metrics.md §5). A 2021 LSOA made of 2011 LSOAs in different
-- bands takes the most deprived of them.
with population as (
    select
        pop.lsoa_code,
        pop.population_0_4,
        min(ra.centre_id) as reach_area,
        min(lk.lad22cd) as la_code,
        coalesce(min(a.deprivation_band), 'unknown') as deprivation_band
    from lsoa_population as pop
    left join stg_lsoa_attributes as a on a.lsoa21 = pop.lsoa_code
    left join reach_areas as ra
        on ra.lsoa_vintage = 2021 and ra.lsoa_code = pop.lsoa_code
    left join lsoa_lookup as lk on lk.lsoa21cd = pop.lsoa_code
    where pop.lsoa_vintage = 2021
    group by pop.lsoa_code, pop.population_0_4
),

deployed_population as (
    select *
    from population
    where la_code in (select la_code from population where reach_area is not null)
),

-- Each LSOA under its geographies and breakdowns, then summed.
placed as (
    select
        g.geography_type,
        case g.geography_type
            when 'deployment' then 'ALL'
            when 'la' then p.la_code
            when 'reach_area' then p.reach_area
        end as geography_code,
        b.breakdown_type,
        case b.breakdown_type when 'all' then 'all' else p.deprivation_band end
            as breakdown_value,
        p.population_0_4
    from deployed_population as p
    cross join (values ('deployment'), ('la'), ('reach_area')) as g(geography_type)
    cross join (values ('all'), ('deprivation')) as b(breakdown_type)
)

select geography_type, geography_code, breakdown_type, breakdown_value,
    sum(population_0_4) as people
from placed
where geography_code is not null
group by geography_type, geography_code, breakdown_type, breakdown_value
