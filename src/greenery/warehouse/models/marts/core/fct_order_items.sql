with

order_items as (
    select * from stg_order_items
),

orders as (
    select * from stg_orders
),

products as (
    select * from stg_products
),

final as (
    select
        order_items.order_id,
        order_items.product_id,
        orders.user_id,
        orders.created_at as ordered_at,
        order_items.quantity,
        products.price_usd,
        order_items.quantity * products.price_usd as line_amount_usd
    from order_items
    left join orders on order_items.order_id = orders.order_id
    left join products on order_items.product_id = products.product_id
)

select * from final
