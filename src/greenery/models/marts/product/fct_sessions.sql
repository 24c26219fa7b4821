with

events as (
    select * from fct_events
),

shopper_events as (
    -- A session's span is the shopper's own activity; shipping notices arrive days later.
    select * from events
    where is_shopper_event
),

per_session as (
    select
        session_id,
        any_value(user_id) as user_id,
        min(created_at) as started_at,
        max(created_at) as ended_at,
        count(*) filter (where event_type = 'page_view') as page_views,
        count(*) filter (where event_type = 'add_to_cart') as add_to_carts,
        count(*) filter (where event_type = 'checkout') as checkouts,
        any_value(order_id) filter (where event_type = 'checkout') as order_id,
        count(distinct product_id) filter (where event_type = 'page_view') as products_viewed,
        count(distinct product_id) filter (where event_type = 'add_to_cart') as products_added,
        count(distinct product_id) as products_touched
    from shopper_events
    group by session_id
),

final as (
    select
        session_id,
        user_id,
        started_at,
        ended_at,
        date_diff('second', started_at, ended_at) / 60.0 as duration_minutes,
        page_views,
        add_to_carts,
        checkouts,
        order_id,
        products_viewed,
        products_added,
        products_touched,
        page_views > 0 as has_page_view,
        add_to_carts > 0 as has_add_to_cart,
        checkouts > 0 as has_checkout
    from per_session
)

select * from final
