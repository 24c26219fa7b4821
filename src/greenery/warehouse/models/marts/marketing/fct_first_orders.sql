with

orders as (
    select * from fct_orders
),

events as (
    select * from fct_events
),

history as (
    select * from dim_user_order_history
),

first_orders as (
    select * from orders
    where user_order_number = 1
),

second_orders as (
    select
        user_id,
        created_at as second_order_at
    from orders
    where user_order_number = 2
),

export_end as (
    -- Follow-up ends with the export's last order: no later order could have been seen.
    select max(created_at) as last_order_at from orders
),

browsing_before as (
    -- What the buyer did on the site up to and including the first order's checkout.
    select
        first_orders.user_id,
        count(distinct events.session_id) as sessions_before,
        count(*) filter (where events.event_type = 'page_view') as page_views_before,
        count(*) filter (where events.event_type = 'add_to_cart') as add_to_carts_before
    from first_orders
    inner join events
        on
            first_orders.user_id = events.user_id
            and first_orders.created_at >= events.created_at
            and events.is_shopper_event
    group by first_orders.user_id
),

final as (
    select
        first_orders.user_id,
        first_orders.order_id,
        first_orders.created_at,
        hour(first_orders.created_at) as hour_utc,
        strftime(first_orders.created_at, '%A') as weekday,  -- noqa: RF04
        first_orders.order_total_usd,
        first_orders.product_count,
        first_orders.unit_count,
        first_orders.has_promo,
        first_orders.promo_id,
        first_orders.order_status,
        first_orders.shipping_service,
        first_orders.days_to_delivery,
        first_orders.days_late,
        first_orders.was_delivered_late,
        coalesce(browsing_before.sessions_before, 0) as sessions_before,
        coalesce(browsing_before.page_views_before, 0) as page_views_before,
        coalesce(browsing_before.add_to_carts_before, 0) as add_to_carts_before,
        history.order_count,
        history.is_repeat_buyer,
        second_orders.second_order_at,
        -- a double division, as both engines compute it (Spark would divide 3600.0 as a decimal)
        cast(date_diff('second', first_orders.created_at, second_orders.second_order_at) as double) / 3600
            as hours_to_second_order,
        cast(date_diff('second', first_orders.created_at, export_end.last_order_at) as double) / 3600
            as hours_left_in_export
    from first_orders
    inner join history on first_orders.user_id = history.user_id
    cross join export_end
    left join browsing_before on first_orders.user_id = browsing_before.user_id
    left join second_orders on first_orders.user_id = second_orders.user_id
)

select * from final
