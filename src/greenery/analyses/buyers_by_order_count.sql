-- Buyers by how many orders they placed: 1, 2, 3, 4 or more.
with

users as (
    select * from dim_user_order_history
),

buyers as (
    select * from users
    where is_buyer
),

final as (
    select
        order_count_band,
        count(*) as buyers,
        count(*) / sum(count(*)) over () as share_of_buyers
    from buyers
    group by order_count_band
    order by order_count_band
)

select * from final
