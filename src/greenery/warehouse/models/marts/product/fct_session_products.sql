with

session_products as (
    select * from int_session_product_events
),

checkout_sessions as (
    select * from int_checkout_sessions
),

order_items as (
    select * from fct_order_items
),

ordered_in_session as (
    select
        checkout_sessions.session_id,
        order_items.product_id,
        order_items.quantity
    from checkout_sessions
    inner join order_items on checkout_sessions.order_id = order_items.order_id
),

final as (
    select
        session_products.session_id,
        session_products.product_id,
        session_products.user_id,
        session_products.first_seen_at,
        session_products.was_viewed,
        session_products.was_added_to_cart,
        ordered_in_session.product_id is not null as was_ordered,
        coalesce(ordered_in_session.quantity, 0) as quantity_ordered
    from session_products
    left join ordered_in_session
        on
            session_products.session_id = ordered_in_session.session_id
            and session_products.product_id = ordered_in_session.product_id
)

select * from final
