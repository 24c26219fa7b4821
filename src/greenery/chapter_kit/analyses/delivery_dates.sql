-- How the delivery and promised dates sit against their orders: how many fall a whole number of days
-- after the order to the second, their range in days, how often each whole day occurs, and whether the
-- promise and the delivery go together (Spearman's rank correlation over orders carrying both).
with

orders as (
    select * from fct_orders
),

dates (kind, order_id, seconds_after) as (
    select
        'delivered',
        order_id,
        date_diff('second', created_at, delivered_at)
    from orders
    where delivered_at is not null
    union all
    select
        'promised',
        order_id,
        date_diff('second', created_at, estimated_delivery_at)
    from orders
    where estimated_delivery_at is not null
),

per_kind as (
    select
        kind,
        count(*) as dates,
        count(*) filter (where seconds_after % 86400 = 0) as whole_days,
        min(seconds_after) / 86400 as min_days,
        max(seconds_after) / 86400 as max_days,
        count(distinct seconds_after // 86400) as distinct_days
    from dates
    group by kind
),

per_day as (
    select
        kind,
        seconds_after // 86400 as whole_day,
        count(*) as dates
    from dates
    group by kind, seconds_after // 86400
),

busiest as (
    -- how evenly the dates spread over their whole days: the fewest and most dates on one day
    select
        kind,
        min(dates) as fewest_on_a_day,
        max(dates) as most_on_a_day
    from per_day
    group by kind
),

both_dates as (
    select
        cast(date_diff('second', created_at, estimated_delivery_at) as double) as promised,
        cast(date_diff('second', created_at, delivered_at) as double) as delivered
    from orders
    where estimated_delivery_at is not null and delivered_at is not null
),

ranked as (
    -- average ranks (ties share the mean of their ranks), as Spearman's correlation needs
    select
        rank() over (order by promised) + (count(*) over (partition by promised) - 1) / 2.0 as promised_rank,
        rank() over (order by delivered) + (count(*) over (partition by delivered) - 1) / 2.0 as delivered_rank
    from both_dates
),

correlation as (
    select
        count(*) as orders_with_both,
        corr(promised_rank, delivered_rank) as spearman_rho
    from ranked
),

final as (
    select
        per_kind.kind,
        per_kind.dates,
        per_kind.whole_days,
        per_kind.min_days,
        per_kind.max_days,
        per_kind.distinct_days,
        busiest.fewest_on_a_day,
        busiest.most_on_a_day,
        correlation.orders_with_both,
        correlation.spearman_rho
    from per_kind
    inner join busiest on per_kind.kind = busiest.kind
    cross join correlation
    order by per_kind.kind
)

select * from final
