with

orders as (
    select * from stg_orders
),

order_sequence as (
    -- The orders read a second time, for their numbering, rather than `orders` twice: a common
    -- table expression read twice is materialized, a copy of every column of every order.
    select
        order_id,
        user_id,
        created_at
    from stg_orders
),

promos as (
    select * from stg_promos
),

item_totals as (
    select * from int_order_item_totals
),

with_delivery as (
    select
        *,
        cast(date_diff('second', created_at, delivered_at) as double) / 86400 as days_to_delivery,
        cast(date_diff('second', estimated_delivery_at, delivered_at) as double) / 86400 as days_late
    from orders
),

numbered as (
    -- Numbered on the three columns the order needs: a window sorts every column it carries.
    select
        order_id,
        row_number() over (partition by user_id order by created_at, order_id) as user_order_number
    from order_sequence
),

final as (
    select
        with_delivery.order_id,
        with_delivery.user_id,
        with_delivery.address_id,
        with_delivery.created_at,
        numbered.user_order_number,
        with_delivery.order_status,
        with_delivery.promo_id,
        with_delivery.promo_id is not null as has_promo,
        coalesce(promos.discount_usd, 0) as discount_usd,
        with_delivery.order_cost_usd,
        with_delivery.shipping_cost_usd,
        with_delivery.order_total_usd,
        item_totals.product_count,
        item_totals.unit_count,
        item_totals.items_amount_usd,
        with_delivery.shipping_service,
        with_delivery.tracking_id,
        with_delivery.estimated_delivery_at,
        with_delivery.delivered_at,
        with_delivery.days_to_delivery,
        with_delivery.days_late,
        with_delivery.days_late > 0 as was_delivered_late
    from with_delivery
    inner join numbered on with_delivery.order_id = numbered.order_id
    left join promos on with_delivery.promo_id = promos.promo_id
    left join item_totals on with_delivery.order_id = item_totals.order_id
)

select * from final
