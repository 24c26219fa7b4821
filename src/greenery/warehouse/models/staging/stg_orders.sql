with

source as (
    select * from raw.orders
),

final as (
    select
        order_id,
        user_id,
        promo_id,
        address_id,
        created_at,
        order_cost as order_cost_usd,
        shipping_cost as shipping_cost_usd,
        order_total as order_total_usd,
        tracking_id,
        shipping_service,
        estimated_delivery_at,
        delivered_at,
        status as order_status
    from source
)

select * from final
