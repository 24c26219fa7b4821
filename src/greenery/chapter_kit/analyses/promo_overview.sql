-- Promo use over all orders: orders and distinct buyers with a promo, and how many of those
-- buyers placed an order after their first promo order; and the baseline, the same for orders
-- without a promo (buyers with one, and how many ordered after their first such order); and the
-- revenue of every order, beside that of promo orders, so that neither is read as the other.
with

orders as (
    select * from fct_order_promos
),

users as (
    select * from dim_user_order_history
),

promo_buyers as (
    select
        user_id,
        min(user_order_number) as first_promo_order_number
    from orders
    where has_promo
    group by user_id
),

plain_buyers as (
    select
        user_id,
        min(user_order_number) as first_plain_order_number
    from orders
    where not has_promo
    group by user_id
),

order_totals as (
    select
        count(*) as orders,
        count(*) filter (where has_promo) as promo_orders,
        sum(discount_usd) as discount_given_usd,
        coalesce(sum(order_total_usd) filter (where has_promo), 0) as promo_revenue_usd,
        coalesce(sum(order_total_usd), 0) as revenue_usd
    from orders
),

buyer_totals as (
    select
        count(*) as promo_buyers,
        count(*) filter (
            where users.order_count > promo_buyers.first_promo_order_number
        ) as promo_buyers_who_ordered_again
    from promo_buyers
    inner join users on promo_buyers.user_id = users.user_id
),

plain_buyer_totals as (
    select
        count(*) as no_promo_buyers,
        count(*) filter (
            where users.order_count > plain_buyers.first_plain_order_number
        ) as no_promo_buyers_who_ordered_again
    from plain_buyers
    inner join users on plain_buyers.user_id = users.user_id
),

final as (
    select
        order_totals.*,
        buyer_totals.*,
        plain_buyer_totals.*
    from order_totals
    cross join buyer_totals
    cross join plain_buyer_totals
)

select * from final
