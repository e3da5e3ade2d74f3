-- Children's centre registrations of children (role = child), linked to the child key.
-- A child registered at two centres has two rows; the family of each registration is the
-- child's family (metrics.md §1.4 reading 3).
select
    link.child_key,
    r.person_key,
    r.family_key,
    r.centre_id,
    r.registration_date,
    r.date_of_birth,
    r.sex,
    r.ethnicity,
    r.lsoa11,
    r.lsoa21,
    r.lone_parent,
    r.teenage_parent,
    r.workless_household,
    r.disability,
    r.eal,
    r.father,
    r.other_flags
from registrations as r
inner join person_link as link
    on link.source = r._source
    and link.source_person_key = r.person_key
where r.role = 'child'
