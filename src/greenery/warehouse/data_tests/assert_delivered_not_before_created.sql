with

orders as (
    select * from stg_orders
),

final as (
    select order_id from orders
    where delivered_at < created_at
)

select * from final
