with

events as (
    select * from fct_events
),

session_products as (
    select * from int_session_product_events
),

shopper_events as (
    -- A session's span is the shopper's own activity; shipping notices arrive days later.
    select * from events
    where is_shopper_event
),

per_session as (
    select
        session_id,
        min(user_id) as user_id,
        min(created_at) as started_at,
        max(created_at) as ended_at,
        count(*) filter (where event_type = 'page_view') as page_views,
        count(*) filter (where event_type = 'add_to_cart') as add_to_carts,
        count(*) filter (where event_type = 'checkout') as checkouts,
        min(order_id) filter (where event_type = 'checkout') as order_id
    from shopper_events
    group by session_id
),

products_per_session as (
    -- Counted from one row per session and product: cheaper than counting distinct products per session.
    select
        session_id,
        count(*) filter (where was_viewed) as products_viewed,
        count(*) filter (where was_added_to_cart) as products_added,
        count(*) as products_touched
    from session_products
    group by session_id
),

final as (
    select
        per_session.session_id,
        per_session.user_id,
        per_session.started_at,
        per_session.ended_at,
        cast(date_diff('second', per_session.started_at, per_session.ended_at) as double) / 60 as duration_minutes,
        per_session.page_views,
        per_session.add_to_carts,
        per_session.checkouts,
        per_session.order_id,
        coalesce(products_per_session.products_viewed, 0) as products_viewed,
        coalesce(products_per_session.products_added, 0) as products_added,
        coalesce(products_per_session.products_touched, 0) as products_touched,
        per_session.page_views > 0 as has_page_view,
        per_session.add_to_carts > 0 as has_add_to_cart,
        per_session.checkouts > 0 as has_checkout
    from per_session
    left join products_per_session on per_session.session_id = products_per_session.session_id
)

select * from final
