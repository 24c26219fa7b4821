with

events as (
    select * from stg_events
),

checkouts as (
    select * from events
    where event_type = 'checkout'
),

final as (
    -- One row per order placed through a checkout event, with the session it closed.
    select
        order_id,
        min(session_id) as session_id,
        min(created_at) as checked_out_at
    from checkouts
    where order_id is not null
    group by order_id
)

select * from final
