with

events as (
    select * from stg_events
),

orders as (
    select * from stg_orders
),

final as (
    select events.event_id
    from events
    left join orders on events.order_id = orders.order_id
    where events.event_type = 'checkout' and orders.order_id is null
)

select * from final
