with

orders as (
    select * from stg_orders
),

item_totals as (
    select * from int_order_item_totals
),

final as (
    select orders.order_id
    from orders
    left join item_totals on orders.order_id = item_totals.order_id
    where abs(orders.order_cost_usd - coalesce(item_totals.items_amount_usd, 0)) > 0.01
)

select * from final
