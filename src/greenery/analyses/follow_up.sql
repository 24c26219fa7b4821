-- Equal follow-up, for every whole number of hours H up to the longest any buyer had: buyers whose
-- first order left at least H hours in the export, and how many of them ordered again within H
-- hours (and how many of those first parcels arrived before the buyer could order again). The chapter
-- chooses H (the largest that keeps more than half of the buyers, unless a parameter sets it).
with

first_orders as (
    select * from fct_first_orders
),

windows as (
    select unnest(range(1, ceil(max(hours_left_in_export))::integer + 1)) as follow_up_hours
    from first_orders
),

final as (
    select
        windows.follow_up_hours,
        count(*) as buyers,
        count(*) filter (where first_orders.hours_left_in_export >= windows.follow_up_hours) as buyers_followed,
        count(*) filter (
            where
                first_orders.hours_left_in_export >= windows.follow_up_hours
                and first_orders.hours_to_second_order <= windows.follow_up_hours
        ) as repeat_buyers_within,
        count(*) filter (
            where
                first_orders.hours_left_in_export >= windows.follow_up_hours
                and first_orders.is_repeat_buyer
        ) as repeat_buyers_ever,
        count(*) filter (
            where
                first_orders.hours_left_in_export >= windows.follow_up_hours
                and first_orders.days_to_delivery is not null
                and 24 * first_orders.days_to_delivery < least(
                    coalesce(first_orders.hours_to_second_order, windows.follow_up_hours), windows.follow_up_hours
                )
        ) as delivered_before_next_chance
    from windows
    cross join first_orders
    group by windows.follow_up_hours
    order by windows.follow_up_hours
)

select * from final
