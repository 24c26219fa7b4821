-- Each promo: orders and buyers, discount given, and how many of its buyers ordered again afterwards.
with

promo_orders as (
    select * from fct_order_promos
),

users as (
    select * from dim_user_order_history
),

promos as (
    select * from dim_promos
),

used as (
    select
        promo_orders.promo_id,
        promo_orders.user_id,
        promo_orders.discount_usd,
        promo_orders.order_total_usd,
        users.order_count > promo_orders.user_order_number as ordered_again_after
    from promo_orders
    inner join users on promo_orders.user_id = users.user_id
    where promo_orders.has_promo
),

per_promo as (
    select
        promo_id,
        count(*) as orders,
        count(distinct user_id) as buyers,
        sum(discount_usd) as discount_given_usd,
        sum(order_total_usd) as revenue_usd,
        count(distinct user_id) filter (where ordered_again_after) as buyers_who_ordered_again
    from used
    group by promo_id
),

final as (
    select
        promos.promo_id as promo,
        promos.promo_status,
        promos.discount_usd,
        coalesce(per_promo.orders, 0) as orders,
        coalesce(per_promo.buyers, 0) as buyers,
        coalesce(per_promo.discount_given_usd, 0) as discount_given_usd,
        coalesce(per_promo.revenue_usd, 0) as revenue_usd,
        coalesce(per_promo.buyers_who_ordered_again, 0) as buyers_who_ordered_again
    from promos
    left join per_promo on promos.promo_id = per_promo.promo_id
    order by orders desc, promo asc
)

select * from final
