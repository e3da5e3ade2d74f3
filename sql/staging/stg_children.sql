-- One row per child known to the child health register (the population basis of the
-- metrics), with date of birth and sex from the register and ethnicity from the child's
-- centre registration when there is one (the register carries none).
with latest as (
    select
        child_key,
        date_of_birth,
        sex,
        -- the latest row wins: registers correct records over time
        row_number() over (
            partition by child_key order by registered_from desc nulls last, sex
        ) as recency
    from stg_chis_rows
),

register as (
    select
        child_key,
        date_of_birth,
        sex
    from latest
    where recency = 1
),

ethnicity as (
    select
        reg.child_key,
        min(coalesce(e.major_group, 'Unknown')) as ethnicity_group
    from stg_registered_children as reg
    left join ref_ethnicity as e on e.code = reg.ethnicity
    where reg.ethnicity is not null
    group by reg.child_key
),

registered as (
    select
        child_key,
        min(registration_date) as first_registration_date
    from stg_registered_children
    group by child_key
)

select
    register.child_key,
    register.date_of_birth,
    coalesce(register.sex, 'unknown') as sex,
    coalesce(ethnicity.ethnicity_group, 'Unknown') as ethnicity_group,
    registered.first_registration_date
from register
left join ethnicity on ethnicity.child_key = register.child_key
left join registered on registered.child_key = register.child_key
