-- The measures the unusual-traffic rules read, one row per account with sessions; the rules'
-- thresholds are the chapters' parameters, applied by the analyses (see _product.yml).
with

sessions as (
    select * from fct_sessions
),

starts_per_hour as (
    select
        user_id,
        date_trunc('hour', started_at) as hour_utc,
        count(*) as sessions_started
    from sessions
    group by user_id, date_trunc('hour', started_at)
),

busiest_hour as (
    -- The clock hour in which the account started most sessions (the earliest, on a tie).
    select
        user_id,
        max(sessions_started) as busiest_hour_sessions,
        arg_min(hour_utc, [-sessions_started, epoch(hour_utc)]) as busiest_hour_utc,
        count(*) as hours_with_session_starts
    from starts_per_hour
    group by user_id
),

per_account as (
    select
        user_id,
        count(*) as sessions,
        count(*) filter (where has_checkout) as checkout_sessions,
        sum(page_views) as page_views
    from sessions
    group by user_id
),

final as (
    select
        per_account.user_id,
        per_account.sessions,
        per_account.checkout_sessions,
        per_account.page_views,
        busiest_hour.hours_with_session_starts,
        busiest_hour.busiest_hour_utc,
        busiest_hour.busiest_hour_sessions
    from per_account
    inner join busiest_hour on per_account.user_id = busiest_hour.user_id
)

select * from final
