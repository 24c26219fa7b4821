with

order_lines as (
    select * from int_order_lines
),

orders as (
    select * from stg_orders
),

final as (
    select
        order_lines.order_id,
        order_lines.product_id,
        orders.user_id,
        orders.created_at as ordered_at,
        order_lines.quantity,
        order_lines.price_usd,
        order_lines.line_amount_usd
    from order_lines
    left join orders on order_lines.order_id = orders.order_id
)

select * from final
