with

orders as (
    select * from stg_orders
),

final as (
    select order_id from orders
    where order_status in ('shipped', 'delivered') and estimated_delivery_at is null
)

select * from final
