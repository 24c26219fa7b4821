-- Orders and unique sessions started in each clock hour of the export (UTC), empty hours included.
with

orders as (
    select * from fct_orders
),

sessions as (
    select * from fct_sessions
),

moments as (
    select orders.created_at as happened_at from orders
    union all
    select sessions.started_at from sessions
),

span as (
    select
        date_trunc('hour', min(happened_at)) as first_hour,
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
        date_trunc('hour', started_at) as hour_utc,
        count(distinct session_id) as sessions
    from sessions
    group by date_trunc('hour', started_at)
),

final as (
    select
        hours.hour_utc,
        coalesce(orders_per_hour.orders, 0) as orders,
        coalesce(sessions_per_hour.sessions, 0) as sessions
    from hours
    left join orders_per_hour on hours.hour_utc = orders_per_hour.hour_utc
    left join sessions_per_hour on hours.hour_utc = sessions_per_hour.hour_utc
    order by hours.hour_utc
)

select * from final
