-- Equal follow-up: for each product, buyers whose first order contained it and left at least
-- $follow_up_hours hours in the export, and how many ordered again within that time.
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

followed as (
    select
        order_id,
        coalesce(hours_to_second_order <= $follow_up_hours, false) as ordered_again
    from first_orders
    where hours_left_in_export >= $follow_up_hours
),

final as (
    select
        products.product_name,
        count(*) as buyers,
        count(*) filter (where followed.ordered_again) as repeat_buyers
    from followed
    inner join order_items on followed.order_id = order_items.order_id
    inner join products on order_items.product_id = products.product_id
    group by products.product_name
    order by products.product_name
)

select * from final
