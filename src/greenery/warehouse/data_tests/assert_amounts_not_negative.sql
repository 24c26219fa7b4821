-- Names the offending row in each table: orders by id, items by order and product, products by id.
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

negative_orders as (
    select 'order ' || order_id as failing_row from orders
    where order_cost_usd < 0 or shipping_cost_usd < 0 or order_total_usd < 0
),

negative_items as (
    select 'item ' || order_id || ' / ' || product_id from order_items
    where quantity <= 0
),

negative_products as (
    select 'product ' || product_id from products
    where price_usd < 0 or inventory < 0
),

final as (
    select * from negative_orders
    union all
    select * from negative_items
    union all
    select * from negative_products
)

select * from final
