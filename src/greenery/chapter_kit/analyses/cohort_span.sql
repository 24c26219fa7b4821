-- The equal-follow-up cohort in time: when the first orders (in the export) of buyers followed for
-- at least $follow_up_hours hours were placed, per hour-of-day segment and overall.
with

first_orders as (
    select * from fct_first_orders
),

followed as (
    select
        created_at,
        case
            when hour_utc < 6 then '00–05 h'
            when hour_utc < 12 then '06–11 h'
            when hour_utc < 18 then '12–17 h'
            else '18–23 h'
        end as hour_segment
    from first_orders
    where hours_left_in_export >= $follow_up_hours
),

by_segment as (
    select
        hour_segment as segment,
        count(*) as buyers,
        min(created_at) as first_at,
        max(created_at) as last_at
    from followed
    group by hour_segment
),

overall as (
    select
        'all' as segment,
        count(*) as buyers,
        min(created_at) as first_at,
        max(created_at) as last_at
    from followed
),

final as (
    select * from overall
    union all
    select * from by_segment
    order by segment
)

select * from final
