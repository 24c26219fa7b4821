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

judged as (
    -- Each buyer against each window: followed for it, back within it, parcel before the next chance.
    select
        windows.follow_up_hours,
        first_orders.hours_left_in_export >= windows.follow_up_hours as is_followed,
        coalesce(first_orders.hours_to_second_order <= windows.follow_up_hours, false) as is_back_within,
        first_orders.is_repeat_buyer,
        coalesce(
            24 * first_orders.days_to_delivery
            < least(coalesce(first_orders.hours_to_second_order, windows.follow_up_hours), windows.follow_up_hours),
            false
        ) as has_parcel_first
    from windows
    cross join first_orders
),

final as (
    select
        follow_up_hours,
        count(*) as buyers,
        count(*) filter (where is_followed) as buyers_followed,
        count(*) filter (where is_followed and is_back_within) as repeat_buyers_within,
        count(*) filter (where is_followed and is_repeat_buyer) as repeat_buyers_ever,
        count(*) filter (where is_followed and has_parcel_first) as delivered_before_next_chance
    from judged
    group by follow_up_hours
    order by follow_up_hours
)

select * from final
