-- Orders by where they stand against their promised delivery date, each group counted, so every rate
-- names its denominator: delivered with a promise (late or not), in transit with a promise (already
-- past it at the export's last recorded activity, or not yet), and the orders without a promise.
with

orders as (
    select * from fct_orders
),

events as (
    select * from fct_events
),

moments as (
    select created_at as happened_at from events
    union all
    select created_at from orders
),

last_activity as (
    select max(happened_at) as last_recorded_at from moments
),

final as (
    select
        count(*) as orders,
        count(*) filter (where orders.order_status = 'preparing') as preparing,
        count(*) filter (where orders.order_status <> 'preparing') as shipped_or_delivered,
        count(orders.estimated_delivery_at) as with_promise,
        count(*) filter (where orders.delivered_at is not null and orders.estimated_delivery_at is not null)
            as delivered_with_promise,
        count(*) filter (where orders.was_delivered_late) as delivered_late,
        count(*) filter (where not orders.was_delivered_late) as delivered_on_time,
        count(*) filter (where orders.delivered_at is null and orders.estimated_delivery_at is not null)
            as in_transit_with_promise,
        count(*) filter (
            where orders.delivered_at is null
            and orders.estimated_delivery_at < last_activity.last_recorded_at
        ) as in_transit_past_promise,
        count(*) filter (where orders.delivered_at is not null and orders.estimated_delivery_at is null)
            as delivered_without_promise,
        count(*) filter (
            where orders.order_status <> 'preparing'
            and orders.delivered_at is null
            and orders.estimated_delivery_at is null
        ) as in_transit_without_promise,
        any_value(last_activity.last_recorded_at) as last_recorded_at
    from orders
    cross join last_activity
)

select * from final
