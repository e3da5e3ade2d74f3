-- Child health register rows with the linked child key: one row per registration period
-- of a child with the health visiting service (a child who moves has several).
select
    link.child_key,
    chis.date_of_birth,
    chis.sex,
    chis.lsoa11,
    chis.lsoa21,
    chis.registered_from,
    chis.registered_to
from chis
inner join person_link as link
    on link.source = chis._source
    and link.source_person_key = chis.key_nhs
