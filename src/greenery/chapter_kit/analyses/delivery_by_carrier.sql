-- Delivery time and delivery against the promised date, per carrier, over delivered orders. Means sum in
-- order (as delivery_time.sql): the same export gives the same last bits whatever the threads did.
with

orders as (
    select * from fct_orders
),

delivered as (
    select * from orders
    where delivered_at is not null
),

final as (
    select
        shipping_service as carrier,
        count(*) as delivered_orders,
        avg(days_to_delivery order by days_to_delivery) as mean_days_to_delivery,
        median(days_to_delivery) as median_days_to_delivery,
        quantile_cont(days_to_delivery, 0.9) as p90_days_to_delivery,
        count(days_late) as with_estimate,
        avg(days_late order by days_late) as mean_days_late,
        count(*) filter (where not was_delivered_late) as on_time_or_early,
        count(*) filter (where was_delivered_late) as late
    from delivered
    group by shipping_service
    order by delivered_orders desc, carrier asc
)

select * from final
