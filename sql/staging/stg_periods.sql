-- Every reporting period the data covers: financial years, financial quarters and rolling
-- 12-month windows (ending at each quarter end, or each month end with
-- [periods] rolling_step = "month"). `window_start` opens the 12-month contact window that
-- ends on `period_end` (the reference date).
with activity_dates as (
    select session_date as d from attendances
    union all
    select contact_date from hv_contacts
    union all
    select review_date from asq3
),

bounds as (
    select
        min(d) as first_date,
        max(d) as last_date
    from activity_dates
),

quarter_starts as (
    select cast(unnest(generate_series(
        cast(date_trunc('quarter', first_date) as date),
        cast(date_trunc('quarter', last_date) as date),
        interval '3 months'
    )) as date) as period_start
    from bounds
),

-- Months up to the end of the last quarter with data, so the rolling window ending at
-- that quarter end exists (flagged incomplete) as soon as its first month has data.
month_starts as (
    select cast(unnest(generate_series(
        cast(date_trunc('quarter', first_date) as date),
        cast(date_trunc('quarter', last_date) + interval '2 months' as date),
        interval '1 month'
    )) as date) as month_start
    from bounds
),

financial_years as (
    select distinct
        make_date(
            cast(extract(year from period_start) as int)
            - case when extract(month from period_start) < 4 then 1 else 0 end,
            4,
            1
        ) as period_start
    from quarter_starts
),

rolling_ends as (
    select cast(m.month_start + interval '1 month' - interval '1 day' as date) as period_end
    from month_starts as m
    cross join metric_params as p
    where p.rolling_step = 'month' or extract(month from m.month_start) in (3, 6, 9, 12)
),

periods as (
    select
        'fy' as period_type,
        period_start,
        cast(period_start + interval '12 months' - interval '1 day' as date) as period_end
    from financial_years
    union all
    select
        'quarter',
        period_start,
        cast(period_start + interval '3 months' - interval '1 day' as date)
    from quarter_starts
    union all
    select
        'rolling12',
        cast(period_end + interval '1 day' - interval '12 months' as date),
        period_end
    from rolling_ends
)

select
    periods.period_type,
    periods.period_start,
    periods.period_end,
    cast(periods.period_end + interval '1 day' - interval '12 months' as date) as window_start,
    -- complete: the data covers the whole period (the first and the current one may not)
    periods.period_start >= cast(date_trunc('quarter', bounds.first_date) as date)
        and periods.period_end <= bounds.last_date as is_complete
from periods
cross join bounds
