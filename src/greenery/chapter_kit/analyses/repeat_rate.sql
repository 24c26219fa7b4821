-- The user repeat rate: users with two or more orders / users with at least one order.
with

users as (
    select * from dim_user_order_history
),

final as (
    select
        count(*) as users,  -- noqa: RF04
        count(*) filter (where order_count >= 1) as buyers,
        count(*) filter (where order_count >= 2) as repeat_buyers,
        repeat_buyers / buyers as repeat_rate
    from users
)

select * from final
