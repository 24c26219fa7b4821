-- Every timestamp lies after 2000 and is not cut off from the rest of the export by more than a year
-- without any activity: a year-1 event or a year-2999 order is a typo, and every time series would
-- stretch across centuries to reach it. Days, not instants, are compared: the gaps are cheap to find.
with

users as (
    select * from stg_users
),

orders as (
    select * from stg_orders
),

events as (
    select * from stg_events
),

stamps as (
    -- Where each timestamp comes from; its name ('stg_orders.delivered_at <order_id>') is only built
    -- for the few that fail, not for every event.
    select
        'stg_users.created_at' as stamp_source,
        user_id as row_key,
        created_at as stamped_at
    from users
    union all
    select
        'stg_users.updated_at' as stamp_source,
        user_id as row_key,
        updated_at as stamped_at
    from users
    union all
    select
        'stg_orders.created_at' as stamp_source,
        order_id as row_key,
        created_at as stamped_at
    from orders
    union all
    select
        'stg_orders.estimated_delivery_at' as stamp_source,
        order_id as row_key,
        estimated_delivery_at as stamped_at
    from orders
    union all
    select
        'stg_orders.delivered_at' as stamp_source,
        order_id as row_key,
        delivered_at as stamped_at
    from orders
    union all
    select
        'stg_events.created_at' as stamp_source,
        event_id as row_key,
        created_at as stamped_at
    from events
),

days as (
    select
        date_trunc('day', stamped_at) as stamped_on,
        count(*) as stamps
    from stamps
    where stamped_at is not null
    group by stamped_on
),

gaps as (
    select
        stamped_on,
        stamps,
        coalesce(date_diff('day', lag(stamped_on) over (order by stamped_on), stamped_on) > 365, false)
            as starts_new_period
    from days
),

periods as (
    select
        stamped_on,
        stamps,
        sum(starts_new_period::integer) over (order by stamped_on) as period
    from gaps
),

main_period as (
    select period from periods
    group by period
    order by sum(stamps) desc, period asc
    limit 1
),

outlying_days as (
    -- Joined with its one row rather than read by a scalar subquery, which Spark runs as a job of its
    -- own. (No days, no main period, no rows: as before.)
    select periods.stamped_on
    from periods
    cross join main_period
    where
        periods.stamped_on < timestamp '2000-01-01'
        or periods.period != main_period.period
),

final as (
    select stamps.stamp_source || ' ' || stamps.row_key as what
    from stamps
    inner join outlying_days on date_trunc('day', stamps.stamped_at) = outlying_days.stamped_on
)

select * from final
