with

order_items as (
    select * from stg_order_items
),

products as (
    select * from stg_products
),

priced_items as (
    select
        order_items.order_id,
        order_items.product_id,
        order_items.quantity,
        order_items.quantity * products.price_usd as line_amount_usd
    from order_items
    left join products on order_items.product_id = products.product_id
),

final as (
    select
        order_id,
        count(*) as product_count,
        sum(quantity) as unit_count,
        sum(line_amount_usd) as items_amount_usd
    from priced_items
    group by order_id
)

select * from final
