-- Each clock hour of the export (UTC), empty hours included: orders placed, and sessions counted
-- two ways, each split into shoppers' and flagged accounts' sessions (see unusual_traffic):
-- started (a session counts in the hour it started) and active (it counts in every clock hour
-- from its first to its last shopper event).
with

orders as (
    select * from fct_orders
),

session_hours as (
    select * from fct_session_hours
),

flags as (
    -- The unusual-traffic rules (account_flags.sql): one row per account with sessions.
    select * from account_flags($max_sessions_per_hour, $max_sessions_per_account)
),

flagged_hours as (
    select
        session_hours.hour_utc,
        session_hours.is_start_hour,
        coalesce(flags.is_flagged, false) as is_flagged
    from session_hours
    left join flags on session_hours.user_id = flags.user_id
),

moments as (
    select orders.created_at as happened_at from orders
    union all
    select flagged_hours.hour_utc from flagged_hours
),

span as (
    select
        -- at most the last 366 days: the series is bounded whatever the timestamps say
        greatest(date_trunc('hour', min(happened_at)), date_trunc('hour', max(happened_at)) - interval 366 day)
            as first_hour,
        date_trunc('hour', max(happened_at)) as last_hour
    from moments
),

hours as (
    select unnest(generate_series(first_hour, last_hour, interval 1 hour)) as hour_utc
    from span
),

orders_per_hour as (
    select
        date_trunc('hour', created_at) as hour_utc,
        count(*) as orders
    from orders
    group by date_trunc('hour', created_at)
),

sessions_per_hour as (
    select
        hour_utc,
        count(*) filter (where is_start_hour and not is_flagged) as sessions_started,
        count(*) filter (where is_start_hour and is_flagged) as flagged_sessions_started,
        count(*) filter (where not is_flagged) as sessions_active,
        count(*) filter (where is_flagged) as flagged_sessions_active
    from flagged_hours
    group by hour_utc
),

final as (
    select
        hours.hour_utc,
        coalesce(orders_per_hour.orders, 0) as orders,
        coalesce(sessions_per_hour.sessions_started, 0) as sessions_started,
        coalesce(sessions_per_hour.flagged_sessions_started, 0) as flagged_sessions_started,
        coalesce(sessions_per_hour.sessions_active, 0) as sessions_active,
        coalesce(sessions_per_hour.flagged_sessions_active, 0) as flagged_sessions_active
    from hours
    left join orders_per_hour on hours.hour_utc = orders_per_hour.hour_utc
    left join sessions_per_hour on hours.hour_utc = sessions_per_hour.hour_utc
    order by hours.hour_utc
)

select * from final
