-- Each order item priced at today's list price: the one place quantity x price is computed.
with

order_items as (
    select * from stg_order_items
),

products as (
    select * from stg_products
),

final as (
    select
        order_items.order_id,
        order_items.product_id,
        order_items.quantity,
        products.price_usd,
        order_items.quantity * products.price_usd as line_amount_usd
    from order_items
    left join products on order_items.product_id = products.product_id
)

select * from final
