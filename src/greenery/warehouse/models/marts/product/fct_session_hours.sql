-- Every clock hour (UTC) each session was active in, from its first to its last shopper event.
-- The series is bounded: a session is counted in at most its first 7 days (168 hours), so a typo in
-- one timestamp can never make the series run for years (assert_timestamps_plausible refuses those).
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
            date_trunc('hour', started_at),
            least(date_trunc('hour', ended_at), date_trunc('hour', started_at) + interval 167 hour),
            interval 1 hour
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
