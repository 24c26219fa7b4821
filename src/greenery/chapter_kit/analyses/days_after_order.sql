-- Orders by whole days from the order to its delivery date and to its promised date: how the dates spread.
with

orders as (
    select * from fct_orders
),

dates (kind, seconds_after) as (
    select
        'delivered',
        date_diff('second', created_at, delivered_at)
    from orders
    where delivered_at is not null
    union all
    select
        'promised',
        date_diff('second', created_at, estimated_delivery_at)
    from orders
    where estimated_delivery_at is not null
),

final as (
    select
        kind,
        seconds_after // 86400 as whole_days_after_order,
        count(*) as orders
    from dates
    group by kind, seconds_after // 86400
    order by kind, whole_days_after_order
)

select * from final
