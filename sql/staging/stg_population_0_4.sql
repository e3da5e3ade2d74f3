-- Children aged 0–4 in the ONS mid-year estimate (lsoa_population), summed for the
-- deployment (the local authorities of its reach areas), each local authority and each
-- reach area: the denominators of the social care and early help rates (metrics.md §5).
with population as (
    select
        pop.lsoa_code,
        pop.population_0_4,
        min(ra.centre_id) as reach_area,
        min(lk.lad22cd) as la_code
    from lsoa_population as pop
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

denominators as (
    select 'deployment' as geography_type, 'ALL' as geography_code, sum(population_0_4) as people
    from deployed_population
    union all
    select 'la', la_code, sum(population_0_4)
    from deployed_population
    group by la_code
    union all
    select 'reach_area', reach_area, sum(population_0_4)
    from deployed_population
    where reach_area is not null
    group by reach_area
)

select * from denominators
