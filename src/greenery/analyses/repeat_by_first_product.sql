-- For each product: buyers whose first order contained it, and how many of them ordered again.
with

first_orders as (
    select * from fct_first_orders
),

order_items as (
    select * from fct_order_items
),

products as (
    select * from dim_products
),

final as (
    select
        products.product_name,
        count(*) as buyers,
        count(*) filter (where first_orders.is_repeat_buyer) as repeat_buyers
    from first_orders
    inner join order_items on first_orders.order_id = order_items.order_id
    inner join products on order_items.product_id = products.product_id
    group by products.product_name
    order by products.product_name
)

select * from final
