-- Target groups of each registered child (extracts.md §3.3, target_groups.csv): a family
-- belongs to a family-level group when any member matches the rule, and children inherit
-- their family's groups; a person-level group needs the child's own registration to match.
-- Rules decided by residence (deprivation:) are applied by the metrics, which know the
-- date; social care and early help rules need those extracts and match nobody until then.
with groups as (
    select
        group_code,
        level,
        split_part(rule, ':', 1) as rule_kind,
        substr(rule, strpos(rule, ':') + 1) as rule_argument
    from ref_target_groups
    where active
),

member_facts as (
    select family_key, person_key, 'flag' as kind, 'lone_parent' as argument
    from registrations where lone_parent
    union all
    select family_key, person_key, 'flag', 'teenage_parent' from registrations where teenage_parent
    union all
    select family_key, person_key, 'flag', 'workless_household'
    from registrations where workless_household
    union all
    select family_key, person_key, 'flag', 'disability' from registrations where disability
    union all
    select family_key, person_key, 'flag', 'eal' from registrations where eal
    union all
    select family_key, person_key, 'flag', 'father' from registrations where father
    union all
    select family_key, person_key, 'other_flag', unnest(string_to_array(other_flags, ';'))
    from registrations where other_flags is not null
    union all
    select family_key, person_key, 'ethnicity', ethnicity
    from registrations where ethnicity is not null
),

member_groups as (
    select distinct
        f.family_key,
        f.person_key,
        g.group_code,
        g.level
    from member_facts as f
    inner join groups as g
        on g.rule_kind = f.kind
        and (
            (f.kind in ('flag', 'other_flag') and g.rule_argument = f.argument)
            or (f.kind = 'ethnicity' and g.rule_argument like 'not:%'
                and not array_has(string_to_array(substr(g.rule_argument, 5), ';'), f.argument))
            or (f.kind = 'ethnicity' and g.rule_argument not like 'not:%'
                and array_has(string_to_array(g.rule_argument, ';'), f.argument))
        )
)

select distinct
    c.child_key,
    m.group_code
from stg_registered_children as c
inner join member_groups as m
    on m.family_key = c.family_key
    and (m.level = 'family' or m.person_key = c.person_key)
