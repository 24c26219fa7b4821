-- For each candidate indicator, buyers and repeat buyers per segment of their first order.
with

first_orders as (
    select * from fct_first_orders
),

window_end as (
    select max(created_at) as last_order_at from fct_orders
),

segmented as (
    select
        first_orders.is_repeat_buyer,
        case
            when first_orders.hour_utc < 6 then '00-05 h'
            when first_orders.hour_utc < 12 then '06-11 h'
            when first_orders.hour_utc < 18 then '12-17 h'
            else '18-23 h'
        end as hour_of_day,
        first_orders.weekday,
        case
            when date_diff('hour', first_orders.created_at, window_end.last_order_at) < 12 then 'under 12 h'
            when date_diff('hour', first_orders.created_at, window_end.last_order_at) < 24 then '12-23 h'
            else '24 h or more'
        end as time_left_in_export,
        case when first_orders.has_promo then 'promo' else 'no promo' end as promo,
        case
            when first_orders.was_delivered_late then 'late'
            when not first_orders.was_delivered_late then 'on time or early'
            else 'not yet delivered or no estimate'
        end as delivery,
        case
            when first_orders.page_views_before <= 2 then '0-2 views'
            when first_orders.page_views_before <= 4 then '3-4 views'
            else '5+ views'
        end as page_views,
        case
            when first_orders.add_to_carts_before <= 1 then '0-1 adds'
            when first_orders.add_to_carts_before = 2 then '2 adds'
            else '3+ adds'
        end as cart_adds,
        case
            when first_orders.sessions_before <= 1 then '1 session'
            else '2+ sessions'
        end as sessions,
        case
            when first_orders.order_total_usd < 100 then 'under $100'
            when first_orders.order_total_usd < 250 then '$100-249'
            when first_orders.order_total_usd < 500 then '$250-499'
            else '$500+'
        end as order_value,
        case
            when first_orders.product_count = 1 then '1 product'
            when first_orders.product_count = 2 then '2 products'
            else '3+ products'
        end as products
    from first_orders
    cross join window_end
),

long as (
    unpivot segmented
    on columns(* exclude (is_repeat_buyer))
    into name indicator value segment
),

final as (
    select
        indicator,
        segment,
        count(*) as buyers,
        count(*) filter (where is_repeat_buyer) as repeat_buyers
    from long
    group by indicator, segment
    order by indicator, segment
)

select * from final
