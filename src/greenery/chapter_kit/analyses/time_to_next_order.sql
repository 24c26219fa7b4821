-- Time to the next order, for every buyer, censored at the export's end: hours from the buyer's
-- first order in the export to their second (reordered), or, for buyers who did not order again,
-- to the export's last order (censored: they might still come back). One row per buyer and
-- indicator segment, with the segments of repeat_by_indicator.sql (the same cut points, so the
-- equal-follow-up view and this one compare the same groups). Browsing indicators leave out
-- accounts flagged as unusual traffic. Delivery is not an indicator here: a parcel arrives after
-- the first order, so grouping by it from the first order on would count the wait for it as time
-- without a reorder. `buyer` numbers the buyers by first order (no ids leave the warehouse);
-- order_count is the buyer's orders in the export.
with

first_orders as (
    select * from fct_first_orders
),

flags as (
    -- The unusual-traffic rules (account_flags.sql): one row per account with sessions.
    select * from account_flags($max_sessions_per_hour, $max_sessions_per_account)
),

buyers as (
    select
        first_orders.*,
        row_number() over (order by first_orders.created_at, first_orders.order_id) as buyer,
        coalesce(flags.is_flagged, false) as is_flagged,
        first_orders.hours_to_second_order is not null as reordered,
        coalesce(first_orders.hours_to_second_order, first_orders.hours_left_in_export) as hours_followed
    from first_orders
    left join flags on first_orders.user_id = flags.user_id
),

segmented as (
    -- A null segment leaves the buyer out of that indicator (UNPIVOT drops nulls).
    select
        buyer,
        hours_followed,
        reordered,
        hours_left_in_export,
        order_count,
        case
            when hour_utc < 6 then '00–05 h'
            when hour_utc < 12 then '06–11 h'
            when hour_utc < 18 then '12–17 h'
            else '18–23 h'
        end as hour_of_day,
        case when has_promo then 'promo' else 'no promo' end as promo,
        case
            when is_flagged then null
            when page_views_before <= 2 then '0–2 views'
            when page_views_before <= 4 then '3–4 views'
            else '5+ views'
        end as page_views,
        case
            when is_flagged then null
            when add_to_carts_before <= 1 then '0–1 adds'
            when add_to_carts_before = 2 then '2 adds'
            else '3+ adds'
        end as cart_adds,
        case
            when is_flagged then null
            when sessions_before <= 1 then '1 session'
            else '2+ sessions'
        end as sessions,
        case
            when order_total_usd < 100 then 'under US$100'
            when order_total_usd < 250 then 'US$100–249'
            when order_total_usd < 500 then 'US$250–499'
            else 'US$500+'
        end as order_value,
        case
            when product_count = 1 then '1 product'
            when product_count = 2 then '2 products'
            else '3+ products'
        end as products
    from buyers
),

long as (
    unpivot segmented
    on columns(* exclude (buyer, hours_followed, reordered, hours_left_in_export, order_count))
    into name indicator value segment
),

segment_order (indicator, segment, segment_order) as (
    values
    ('hour_of_day', '00–05 h', 1), ('hour_of_day', '06–11 h', 2),
    ('hour_of_day', '12–17 h', 3), ('hour_of_day', '18–23 h', 4),
    ('promo', 'promo', 1), ('promo', 'no promo', 2),
    ('page_views', '0–2 views', 1), ('page_views', '3–4 views', 2), ('page_views', '5+ views', 3),
    ('cart_adds', '0–1 adds', 1), ('cart_adds', '2 adds', 2), ('cart_adds', '3+ adds', 3),
    ('sessions', '1 session', 1), ('sessions', '2+ sessions', 2),
    ('order_value', 'under US$100', 1), ('order_value', 'US$100–249', 2),
    ('order_value', 'US$250–499', 3), ('order_value', 'US$500+', 4),
    ('products', '1 product', 1), ('products', '2 products', 2), ('products', '3+ products', 3)
),

final as (
    select
        long.indicator,
        long.segment,
        segment_order.segment_order,
        long.buyer,
        long.hours_followed,
        long.reordered,
        long.hours_left_in_export,
        long.order_count
    from long
    inner join segment_order on long.indicator = segment_order.indicator and long.segment = segment_order.segment
    order by long.indicator, segment_order.segment_order, long.buyer
)

select * from final
