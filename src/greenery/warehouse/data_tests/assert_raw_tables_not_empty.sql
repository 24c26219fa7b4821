-- Fails with the name of each essential table that arrived without rows.
with

users as (
    select * from stg_users
),

products as (
    select * from stg_products
),

orders as (
    select * from stg_orders
),

order_items as (
    select * from stg_order_items
),

events as (
    select * from stg_events
),

per_table as (
    -- One row per table with its count (a union rather than DuckDB's unpivot: both engines run it).
    select
        'users' as table_name,
        count(*) as row_count
    from users
    union all
    select
        'products' as table_name,
        count(*) as row_count
    from products
    union all
    select
        'orders' as table_name,
        count(*) as row_count
    from orders
    union all
    select
        'order_items' as table_name,
        count(*) as row_count
    from order_items
    union all
    select
        'events' as table_name,
        count(*) as row_count
    from events
),

final as (
    select table_name from per_table
    where row_count = 0
)

select * from final
