with

orders as (
    select * from stg_orders
),

promos as (
    select * from stg_promos
),

final as (
    select orders.order_id
    from orders
    left join promos on orders.promo_id = promos.promo_id
    where
        abs(
            orders.order_total_usd
            - (orders.order_cost_usd + orders.shipping_cost_usd - coalesce(promos.discount_usd, 0))
        ) > 0.01
)

select * from final
