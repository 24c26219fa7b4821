with

orders as (
    select * from stg_orders
),

order_items as (
    select * from stg_order_items
),

products as (
    select * from stg_products
),

item_amounts as (
    select
        order_items.order_id,
        sum(order_items.quantity * products.price_usd) as items_amount_usd
    from order_items
    inner join products on order_items.product_id = products.product_id
    group by order_items.order_id
),

final as (
    select orders.order_id
    from orders
    left join item_amounts on orders.order_id = item_amounts.order_id
    where abs(orders.order_cost_usd - coalesce(item_amounts.items_amount_usd, 0)) > 0.01
)

select * from final
