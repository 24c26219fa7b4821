with

users as (
    select * from dim_users
),

orders as (
    select * from fct_orders
),

per_user as (
    select
        user_id,
        count(*) as order_count,
        min(created_at) as first_order_at,
        max(created_at) as last_order_at,
        sum(order_total_usd) as lifetime_spend_usd,
        count(*) filter (where has_promo) as promo_order_count,
        sum(discount_usd) as lifetime_discount_usd
    from orders
    group by user_id
),

final as (
    select
        users.user_id,
        users.state,
        users.created_at as signed_up_at,
        coalesce(per_user.order_count, 0) as order_count,
        per_user.first_order_at,
        per_user.last_order_at,
        coalesce(per_user.lifetime_spend_usd, 0) as lifetime_spend_usd,
        coalesce(per_user.promo_order_count, 0) as promo_order_count,
        coalesce(per_user.lifetime_discount_usd, 0) as lifetime_discount_usd,
        coalesce(per_user.order_count, 0) >= 1 as is_buyer,
        coalesce(per_user.order_count, 0) >= 2 as is_repeat_buyer,
        case
            when per_user.order_count is null then '0'
            when per_user.order_count >= 4 then '4+'
            else per_user.order_count::varchar
        end as order_count_band
    from users
    left join per_user on users.user_id = per_user.user_id
)

select * from final
