-- Delivered orders by whole days from order to delivery.
with

orders as (
    select * from fct_orders
),

final as (
    select
        floor(days_to_delivery)::integer as days_to_delivery,
        count(*) as orders
    from orders
    where days_to_delivery is not null
    group by floor(days_to_delivery)
    order by days_to_delivery
)

select * from final
