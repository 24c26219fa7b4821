-- Orders delivered after the export's last recorded activity (its latest event or order):
-- a delivery the export could not yet have seen.
with

orders as (
    select * from stg_orders
),

events as (
    select * from stg_events
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
    select orders.order_id
    from orders
    cross join last_activity
    where orders.delivered_at > last_activity.last_recorded_at
)

select * from final
