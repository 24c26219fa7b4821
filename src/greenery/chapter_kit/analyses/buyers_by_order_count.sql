-- Buyers by how many orders they placed; with $top_band set, the last band is open-ended ($top_band
-- or more); with $top_band null, every order count is its own row (no pooled band).
with

users as (
    select * from dim_user_order_history
),

banded as (
    select
        least(order_count, $top_band) as band_order,
        case
            when order_count >= $top_band then $top_band::varchar || '+'
            else order_count::varchar
        end as order_count_band
    from users
    where is_buyer
),

final as (
    select
        order_count_band,
        count(*) as buyers,
        count(*) / sum(count(*)) over () as share_of_buyers
    from banded
    group by band_order, order_count_band
    order by band_order
)

select * from final
