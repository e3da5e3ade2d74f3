-- SC-01 … SC-04 and SC-07 (metrics.md §5) for the census years in the lake: each financial
-- year ending on a CIN census reference date. Children are counted at 0–4 (at referral, at
-- plan start or at the reference date); rates are per 10,000 children aged 0–4 in the ONS
-- mid-year estimate (lsoa_population). Children are placed by the residence the
-- sc_person_identifiers side file gives them (UNKNOWN without it); the deployment row counts
-- every child in the census. A referral or plan carried by two census files counts once,
-- as the latest file has it. Breakdowns: deprivation band of that residence (rates per
-- 10,000 of the 0–4 population in the band), and sex and ethnicity group from the census
-- or 903 header (SC-02 only: the ONS file gives no population by sex or ethnicity, so
-- those rates have no denominator).
with years as (
    select p.period_type, p.period_start, p.period_end
    from stg_periods as p
    where p.period_type = 'fy'
        and p.period_end in (select reference_date from cin_header)
),

children as (
    select
        la_child_key,
        _file_sha256,
        date_of_birth,
        expected_date_of_birth,
        reference_date,
        sex,
        ethnicity
    from cin_child
),

residence as (
    select
        s.la_child_key,
        min(a.reach_area) as reach_area,
        min(coalesce(a.la_code, 'UNKNOWN')) as la_code,
        min(coalesce(a.deprivation_band, 'unknown')) as deprivation_band
    from sc_person_identifiers as s
    left join stg_lsoa_attributes as a
        on (a.lsoa11 is not distinct from s.lsoa11)
        and (a.lsoa21 is not distinct from s.lsoa21)
    group by s.la_child_key
),

-- Every referral once, from the latest census that carries it.
referrals as (
    select *
    from (
        select
            e.la_child_key,
            e.referral_date,
            e.closure_date,
            c.date_of_birth,
            c.expected_date_of_birth,
            c.sex,
            c.ethnicity,
            row_number() over (
                partition by e.la_child_key, e.referral_date
                order by e.reference_date desc
            ) as pick
        from cin_episode as e
        inner join children as c
            on c.la_child_key = e.la_child_key and c._file_sha256 = e._file_sha256
    ) as r
    where pick = 1
),

plans as (
    select *
    from (
        select
            p.la_child_key,
            p.start_date,
            p.end_date,
            c.date_of_birth,
            c.sex,
            c.ethnicity,
            row_number() over (
                partition by p.la_child_key, p.start_date
                order by e.reference_date desc
            ) as pick
        from cin_cpp as p
        inner join cin_episode as e
            on e.la_child_key = p.la_child_key
            and e.episode_seq = p.episode_seq
            and e._file_sha256 = p._file_sha256
        inner join children as c
            on c.la_child_key = p.la_child_key and c._file_sha256 = p._file_sha256
    ) as r
    where pick = 1 and start_date is not null
),

looked_after as (
    select distinct
        ep.la_child_key,
        ep.decom,
        ep.dec,
        h.date_of_birth,
        h.sex,
        h.ethnicity
    from ssda903_episodes as ep
    inner join ssda903_header as h on h.la_child_key = ep.la_child_key
),

-- One row per counted child or event: (metric, year, child, in numerator, in denominator,
-- the child's sex and ethnicity).
events as (
    select
        'SC-01' as metric_id, y.period_end, r.la_child_key, 1 as num, 0 as den, r.sex,
        r.ethnicity
    from years as y
    inner join referrals as r
        on r.referral_date between y.period_start and y.period_end
    where r.date_of_birth <= r.referral_date
        and r.date_of_birth + interval '5 years' > r.referral_date
    union all
    select 'SC-01U', y.period_end, r.la_child_key, 1, 0, r.sex, r.ethnicity
    from years as y
    inner join referrals as r
        on r.referral_date between y.period_start and y.period_end
    where r.date_of_birth is null and r.expected_date_of_birth is not null
    union all
    -- SC-02: of SC-01's referrals, those with an earlier referral of the same child dated on
    -- or after the same day twelve calendar months before.
    select
        'SC-02',
        y.period_end,
        r.la_child_key,
        max(case
            when prev.referral_date >= r.referral_date - interval '12 months' then 1 else 0
        end),
        1,
        r.sex,
        r.ethnicity
    from years as y
    inner join referrals as r
        on r.referral_date between y.period_start and y.period_end
    left join referrals as prev
        on prev.la_child_key = r.la_child_key and prev.referral_date < r.referral_date
    where r.date_of_birth <= r.referral_date
        and r.date_of_birth + interval '5 years' > r.referral_date
    group by y.period_end, r.la_child_key, r.referral_date, r.sex, r.ethnicity
    union all
    select distinct 'SC-03', y.period_end, p.la_child_key, 1, 0, p.sex, p.ethnicity
    from years as y
    inner join plans as p
        on p.start_date <= y.period_end
        and (p.end_date is null or p.end_date > y.period_end)
    where p.date_of_birth <= y.period_end
        and p.date_of_birth + interval '5 years' > y.period_end
    union all
    select 'SC-03S', y.period_end, p.la_child_key, 1, 0, p.sex, p.ethnicity
    from years as y
    inner join plans as p on p.start_date between y.period_start and y.period_end
    where p.date_of_birth <= p.start_date
        and p.date_of_birth + interval '5 years' > p.start_date
    union all
    select distinct 'SC-04', y.period_end, l.la_child_key, 1, 0, l.sex, l.ethnicity
    from years as y
    inner join looked_after as l
        on l.decom <= y.period_end and (l.dec is null or l.dec > y.period_end)
    where l.date_of_birth <= y.period_end
        and l.date_of_birth + interval '5 years' > y.period_end
    union all
    select distinct 'SC-07', y.period_end, r.la_child_key, 1, 0, r.sex, r.ethnicity
    from years as y
    inner join referrals as r
        on r.referral_date <= y.period_end
        and (r.closure_date is null or r.closure_date > y.period_end)
    where r.date_of_birth <= y.period_end
        and r.date_of_birth + interval '5 years' > y.period_end
),

placed as (
    select
        g.geography_type,
        case g.geography_type
            when 'deployment' then 'ALL'
            when 'la' then coalesce(res.la_code, 'UNKNOWN')
            when 'reach_area' then res.reach_area
        end as geography_code,
        b.breakdown_type,
        case b.breakdown_type
            when 'all' then 'all'
            -- children the side file does not place have no band (and no rate by band)
            when 'deprivation' then case
                when res.la_child_key is null then 'no_residence'
                else coalesce(res.deprivation_band, 'unknown')
            end
            when 'sex' then coalesce(ev.sex, 'unknown')
            when 'ethnicity_group' then coalesce(eth.major_group, 'Unknown')
        end as breakdown_value,
        ev.metric_id,
        ev.period_end,
        ev.num,
        ev.den
    from events as ev
    left join residence as res on res.la_child_key = ev.la_child_key
    left join ref_ethnicity as eth on eth.code = ev.ethnicity
    cross join (values ('deployment'), ('la'), ('reach_area')) as g(geography_type)
    cross join (values ('all'), ('deprivation'), ('sex'), ('ethnicity_group'))
        as b(breakdown_type)
    -- no population by sex or ethnicity: those breakdowns are for SC-02's percentage only
    where b.breakdown_type in ('all', 'deprivation') or ev.metric_id = 'SC-02'
),

counted as (
    select
        pl.metric_id,
        y.period_type,
        y.period_start,
        pl.period_end,
        pl.geography_type,
        pl.geography_code,
        pl.breakdown_type,
        pl.breakdown_value,
        sum(pl.num) as numerator,
        sum(pl.den) as events
    from placed as pl
    inner join years as y on y.period_end = pl.period_end
    where pl.geography_code is not null
    group by
        pl.metric_id, y.period_type, y.period_start, pl.period_end,
        pl.geography_type, pl.geography_code, pl.breakdown_type, pl.breakdown_value
)

select
    c.metric_id,
    c.period_type,
    c.period_start,
    c.period_end,
    c.geography_type,
    c.geography_code,
    c.breakdown_type,
    c.breakdown_value,
    c.numerator,
    case
        when c.metric_id = 'SC-02' then c.events
        when c.metric_id = 'SC-01U' then cast(null as bigint)
        else d.people
    end as denominator,
    cast(null as bigint) as comparison_numerator,
    cast(null as bigint) as comparison_denominator,
    case when c.geography_code = 'UNKNOWN' then 'approximate' else '' end as quality_flags
from counted as c
left join stg_population_0_4 as d
    on d.geography_type = c.geography_type
    and d.geography_code = c.geography_code
    and d.breakdown_type = c.breakdown_type
    and d.breakdown_value = c.breakdown_value
where c.metric_id in ('SC-02', 'SC-01U') or d.people is not null
