-- Delivery and promised dates falling a whole number of days after their order, to the second, when
-- that is the pattern of the export rather than a coincidence. A recorded time lands on its order's
-- own clock second about once in 86,400 dates; when half or more of at least 10 dates do, the dates
-- were generated or scheduled, not recorded. One row per order carrying such a date.
with

orders as (
    select * from stg_orders
),

dates as (
    select
        order_id,
        created_at,
        delivered_at as dated_at
    from orders
    where delivered_at is not null
    union all
    select
        order_id,
        created_at,
        estimated_delivery_at
    from orders
    where estimated_delivery_at is not null
),

gaps as (
    select
        order_id,
        date_diff('second', created_at, dated_at) % 86400 = 0 as is_whole_days
    from dates
),

pattern as (
    select
        count(*) as dated,
        count(*) filter (where is_whole_days) as whole_days
    from gaps
),

final as (
    select distinct gaps.order_id
    from gaps
    cross join pattern
    where gaps.is_whole_days and pattern.dated >= 10 and 2 * pattern.whole_days >= pattern.dated
)

select * from final
