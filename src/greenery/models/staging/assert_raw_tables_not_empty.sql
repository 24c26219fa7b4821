-- Fails with the name of each essential table that arrived without rows.
with

counts as (
    select 'users' as table_name, count(*) as row_count from stg_users
    union all select 'products', count(*) from stg_products
    union all select 'orders', count(*) from stg_orders
    union all select 'order_items', count(*) from stg_order_items
    union all select 'events', count(*) from stg_events
),

final as (
    select table_name from counts
    where row_count = 0
)

select * from final
