-- 50 sessions is far above any shopper's activity in an export of a few days.
with

events as (
    select * from stg_events
),

sessions_per_user as (
    select
        user_id,
        count(distinct session_id) as sessions
    from events
    group by user_id
),

final as (
    select user_id from sessions_per_user
    where sessions > 50
)

select * from final
