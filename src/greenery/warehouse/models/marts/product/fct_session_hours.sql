-- Every clock hour (UTC) each session was active in, from its first to its last shopper event.
with

sessions as (
    select * from fct_sessions
),

hours as (
    select
        session_id,
        user_id,
        started_at,
        unnest(generate_series(
            date_trunc('hour', started_at), date_trunc('hour', ended_at), interval 1 hour
        )) as hour_utc
    from sessions
),

final as (
    select
        session_id,
        user_id,
        hour_utc,
        hour_utc = date_trunc('hour', started_at) as is_start_hour
    from hours
)

select * from final
