with

orders as (
    select * from stg_orders
),

final as (
    select order_id from orders
    where
        (order_status in ('shipped', 'delivered') and (tracking_id is null or shipping_service is null))
        or (order_status = 'delivered' and delivered_at is null)
        or (order_status = 'preparing' and (tracking_id is not null or delivered_at is not null))
)

select * from final
