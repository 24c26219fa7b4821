-- Days from order to delivery over every delivered order: how many, their mean and standard deviation
-- (the inputs of a mean-difference test between builds). The values are summed in order: a table read by
-- several threads adds doubles in whichever order its parts arrive, and the last bits of the mean would
-- differ from one run to the next (the history records them; a rerun must record the same).
with

orders as (
    select * from fct_orders
),

final as (
    select
        count(days_to_delivery) as delivered_orders,
        avg(days_to_delivery order by days_to_delivery) as mean_days_to_delivery,
        stddev_samp(days_to_delivery order by days_to_delivery) as sd_days_to_delivery
    from orders
)

select * from final
