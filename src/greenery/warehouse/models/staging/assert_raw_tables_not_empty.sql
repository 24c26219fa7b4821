-- Fails with the name of each essential table that arrived without rows.
with

counts as (
    select
        (select count(*) from stg_users) as users,  -- noqa: RF04
        (select count(*) from stg_products) as products,
        (select count(*) from stg_orders) as orders,
        (select count(*) from stg_order_items) as order_items,
        (select count(*) from stg_events) as events
),

per_table as (
    unpivot counts
    on users, products, orders, order_items, events
    into name table_name value row_count
),

final as (
    select table_name from per_table
    where row_count = 0
)

select * from final
