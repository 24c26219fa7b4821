with

orders as (
    select * from fct_orders
),

promos as (
    select * from stg_promos
),

final as (
    select
        orders.order_id,
        orders.user_id,
        orders.created_at,
        orders.user_order_number,
        orders.has_promo,
        orders.promo_id,
        promos.promo_status,
        orders.discount_usd,
        orders.order_cost_usd,
        orders.order_total_usd
    from orders
    left join promos on orders.promo_id = promos.promo_id
)

select * from final
