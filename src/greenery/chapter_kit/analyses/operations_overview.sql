-- Headline operations figures, with both denominators for "orders per hour" (sessions per hour,
-- with and without flagged traffic, are in sessions_per_hour).
with

users as (
    select * from dim_user_order_history
),

orders as (
    select * from fct_orders
),

user_counts as (
    select
        count(*) as user_count,
        count(*) filter (where is_buyer) as buyer_count
    from users
),

order_hours as (
    select
        count(*) as order_count,
        count(distinct date_trunc('hour', created_at)) as hours_with_orders,
        date_diff('hour', date_trunc('hour', min(created_at)), date_trunc('hour', max(created_at)))
        + 1 as hours_in_span,
        sum(order_total_usd) as revenue_usd
    from orders
),

final as (
    select
        user_counts.user_count,
        user_counts.buyer_count,
        order_hours.order_count,
        order_hours.revenue_usd,
        order_hours.hours_with_orders,
        order_hours.hours_in_span,
        order_hours.order_count / order_hours.hours_with_orders as orders_per_hour_with_orders,
        order_hours.order_count / order_hours.hours_in_span as orders_per_hour_of_span
    from user_counts
    cross join order_hours
)

select * from final
