-- Every children's social care spell of a linked child: CIN episodes (referral to closure),
-- child protection plans (start to end) and looked-after episodes from the SSDA903 return
-- (`starts_care` when the episode begins a period of care, RNE `S`). One place for the
-- overlap metrics (metrics.md §6) and the cost-avoidance cohorts (value-for-money.md §3).
select
    l.child_key,
    'cin' as kind,
    e.referral_date as start_date,
    e.closure_date as end_date,
    false as starts_care
from cin_episode as e
inner join person_link as l
    on l.source = e._source and l.source_person_key = e.la_child_key
union all
select l.child_key, 'cp', p.start_date, p.end_date, false
from cin_cpp as p
inner join person_link as l
    on l.source = p._source and l.source_person_key = p.la_child_key
union all
select l.child_key, 'cla', e.decom, e.dec, coalesce(e.rne = 'S', false)
from ssda903_episodes as e
inner join person_link as l
    on l.source = e._source and l.source_person_key = e.la_child_key
