-- SR-10 … SR-15 (metrics.md §3.2–3.3): EYFS Profile results by academic year, for pupils
-- with a result in all 17 ELGs (the `complete` flag; W007 pupils are left out), placed by
-- the residence of their EYFSP postcode. GLD is the `gld` the ingest derived from
-- reference/eyfsp_elgs.csv, never a figure from the extract. A pupil is counted once per
-- academic year even if two files carry them. SR-12 is the not-FSM minus FSM gap in
-- percentage points (positive: FSM pupils do worse), from unrounded values. SR-13 is the
-- mean number of ELGs at expected (its sum of squares rides in comparison_numerator, for
-- the interval of a mean). SR-15 compares GLD of pupils whose linked child had sustained
-- centre engagement before Reception began (1 September) with all other pupils: an
-- association, not an effect.
--
-- Only the academic years beginning on or after recompute_from() (every year in a full
-- build). A year that began earlier cannot change with data dated from then on: its
-- engagement breakdown asks whether sustained engagement began before the year did, and
-- an incremental build keeps every first-sustained date before the recompute date. So
-- this model is incremental by period_start, not period_end.
with results as (
    select
        e.*,
        row_number() over (
            partition by e.key_upn, e.academic_year
            order by e._source, e._file_sha256, e._row_number
        ) as pick
    from eyfsp as e
    where e.complete
        and make_date(cast(substr(e.academic_year, 1, 4) as int), 9, 1) >= recompute_from()
),

pupils as (
    select
        'academic_year' as period_type,
        make_date(cast(substr(e.academic_year, 1, 4) as int), 9, 1) as period_start,
        make_date(cast(substr(e.academic_year, 1, 4) as int) + 1, 8, 31) as period_end,
        coalesce(a.la_code, 'UNKNOWN') as la_code,
        a.reach_area,
        a.eh_area,
        a.lot,
        coalesce(a.deprivation_band, 'unknown') as deprivation_band,
        case when e.fsm_eligible then 'fsm' else 'not_fsm' end as fsm,
        e.gld,
        case
            when eng.first_sustained_date < make_date(cast(substr(e.academic_year, 1, 4) as int), 9, 1)
                then 'sustained'
            when reg.first_registration_date
                <= make_date(cast(substr(e.academic_year, 1, 4) as int), 9, 1)
                then 'registered_not_sustained'
            else 'not_registered_or_unlinked'
        end as engagement,
        case when e.elg_listening_attention_understanding = 'expected' then 1 else 0 end
            + case when e.elg_speaking = 'expected' then 1 else 0 end
            + case when e.elg_self_regulation = 'expected' then 1 else 0 end
            + case when e.elg_managing_self = 'expected' then 1 else 0 end
            + case when e.elg_building_relationships = 'expected' then 1 else 0 end
            + case when e.elg_gross_motor = 'expected' then 1 else 0 end
            + case when e.elg_fine_motor = 'expected' then 1 else 0 end
            + case when e.elg_comprehension = 'expected' then 1 else 0 end
            + case when e.elg_word_reading = 'expected' then 1 else 0 end
            + case when e.elg_writing = 'expected' then 1 else 0 end
            + case when e.elg_number = 'expected' then 1 else 0 end
            + case when e.elg_numerical_patterns = 'expected' then 1 else 0 end
            + case when e.elg_past_and_present = 'expected' then 1 else 0 end
            + case when e.elg_people_culture_communities = 'expected' then 1 else 0 end
            + case when e.elg_natural_world = 'expected' then 1 else 0 end
            + case when e.elg_creating_with_materials = 'expected' then 1 else 0 end
            + case when e.elg_being_imaginative_expressive = 'expected' then 1 else 0 end as elgs_expected,
        e.elg_listening_attention_understanding = 'expected'
            and e.elg_speaking = 'expected'
            and e.elg_self_regulation = 'expected'
            and e.elg_managing_self = 'expected'
            and e.elg_building_relationships = 'expected'
            and e.elg_gross_motor = 'expected'
            and e.elg_fine_motor = 'expected'
            and e.elg_comprehension = 'expected'
            and e.elg_word_reading = 'expected'
            and e.elg_writing = 'expected'
            and e.elg_number = 'expected'
            and e.elg_numerical_patterns = 'expected'
            and e.elg_past_and_present = 'expected'
            and e.elg_people_culture_communities = 'expected'
            and e.elg_natural_world = 'expected'
            and e.elg_creating_with_materials = 'expected'
            and e.elg_being_imaginative_expressive = 'expected' as all_17
    from results as e
    left join stg_lsoa_attributes as a
        on (a.lsoa11 is not distinct from e.lsoa11)
        and (a.lsoa21 is not distinct from e.lsoa21)
    left join person_link as l on l.source = e._source and l.source_person_key = e.key_upn
    left join stg_child_engagement as eng on eng.child_key = l.child_key
    left join (
        select child_key, min(registration_date) as first_registration_date
        from stg_registered_children
        group by child_key
    ) as reg on reg.child_key = l.child_key
    where e.pick = 1
),

-- Counted first at the finest grain, then spread over the geographies and breakdowns.
fine as (
    select
        period_type,
        period_start,
        period_end,
        la_code,
        reach_area,
        eh_area,
        lot,
        deprivation_band,
        fsm,
        engagement,
        count(*) as pupils,
        count(*) filter (where gld) as gld,
        count(*) filter (where all_17) as all_17,
        sum(elgs_expected) as elgs_expected,
        sum(elgs_expected * elgs_expected) as elgs_expected_squares
    from pupils
    group by
        period_type, period_start, period_end, la_code, reach_area, eh_area, lot,
        deprivation_band, fsm, engagement
),

placed as (
    select
        g.geography_type,
        case g.geography_type
            when 'deployment' then 'ALL'
            when 'la' then f.la_code
            when 'reach_area' then f.reach_area
            when 'eh_area' then f.eh_area
            when 'lot' then f.lot
        end as geography_code,
        b.breakdown_type,
        case b.breakdown_type
            when 'all' then 'all'
            when 'deprivation' then f.deprivation_band
            when 'fsm' then f.fsm
            when 'engagement' then f.engagement
        end as breakdown_value,
        f.*
    from fine as f
    cross join (values ('deployment'), ('la'), ('reach_area'), ('eh_area'), ('lot'))
        as g(geography_type)
    cross join (values ('all'), ('deprivation'), ('fsm'), ('engagement')) as b(breakdown_type)
),

counted as (
    select
        period_type,
        period_start,
        period_end,
        geography_type,
        geography_code,
        breakdown_type,
        breakdown_value,
        sum(pupils) as pupils,
        sum(gld) as gld,
        sum(all_17) as all_17,
        sum(case when fsm = 'fsm' then pupils else 0 end) as fsm_pupils,
        sum(case when fsm = 'fsm' then gld else 0 end) as fsm_gld,
        sum(case when fsm = 'not_fsm' then pupils else 0 end) as other_pupils,
        sum(case when fsm = 'not_fsm' then gld else 0 end) as other_gld,
        sum(elgs_expected) as elgs_expected,
        sum(elgs_expected_squares) as elgs_expected_squares,
        sum(case when engagement = 'sustained' then pupils else 0 end) as sustained_pupils,
        sum(case when engagement = 'sustained' then gld else 0 end) as sustained_gld,
        sum(case when engagement <> 'sustained' then pupils else 0 end) as others_pupils,
        sum(case when engagement <> 'sustained' then gld else 0 end) as others_gld
    from placed
    where geography_code is not null
    group by
        period_type, period_start, period_end,
        geography_type, geography_code, breakdown_type, breakdown_value
)

select
    'SR-10' as metric_id,
    period_type,
    period_start,
    period_end,
    geography_type,
    geography_code,
    breakdown_type,
    breakdown_value,
    gld as numerator,
    pupils as denominator,
    cast(null as bigint) as comparison_numerator,
    cast(null as bigint) as comparison_denominator,
    '' as quality_flags
from counted
union all
select
    'SR-14', period_type, period_start, period_end, geography_type, geography_code,
    breakdown_type, breakdown_value, all_17, pupils, cast(null as bigint), cast(null as bigint), ''
from counted
union all
-- FSM pupils only, so not broken down by FSM.
select
    'SR-11', period_type, period_start, period_end, geography_type, geography_code,
    breakdown_type, breakdown_value, fsm_gld, fsm_pupils, cast(null as bigint),
    cast(null as bigint), ''
from counted
where breakdown_type <> 'fsm'
union all
select
    'SR-12', period_type, period_start, period_end, geography_type, geography_code,
    breakdown_type, breakdown_value, other_gld, other_pupils, fsm_gld, fsm_pupils, ''
from counted
where breakdown_type <> 'fsm'
union all
select
    'SR-13', period_type, period_start, period_end, geography_type, geography_code,
    breakdown_type, breakdown_value, elgs_expected, pupils, elgs_expected_squares,
    cast(null as bigint), ''
from counted
union all
-- Sustained before Reception against every other pupil, overall and within the FSM and
-- deprivation strata (not by engagement: it is the comparison itself).
select
    'SR-15', period_type, period_start, period_end, geography_type, geography_code,
    breakdown_type, breakdown_value, sustained_gld, sustained_pupils, others_gld,
    others_pupils, 'association_not_effect'
from counted
where breakdown_type in ('all', 'deprivation', 'fsm')
