-- Delivery dates against the export's last recorded activity (its latest event or order): how
-- many delivered orders carry a date the export could not yet have seen.
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
        count(orders.delivered_at) as delivered_orders,
        count(*) filter (where orders.delivered_at > last_activity.last_recorded_at) as delivered_after_export
    from orders
    cross join last_activity
)

select * from final
