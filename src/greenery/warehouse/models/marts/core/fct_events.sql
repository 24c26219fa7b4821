with

events as (
    select * from stg_events
),

final as (
    select
        event_id,
        session_id,
        user_id,
        event_type,
        created_at,
        order_id,
        product_id,
        -- package_shipped is written by the warehouse system, not by the shopper.
        event_type in ('page_view', 'add_to_cart', 'checkout') as is_shopper_event
    from events
)

select * from final
