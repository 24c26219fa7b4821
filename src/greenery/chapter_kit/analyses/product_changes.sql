-- Products whose name, price or stock changed since the previous build (one row per product).
with

product_changes as (
    select * from history_changes
    where snapshot = 'products_snapshot' and change = 'changed'
),

final as (
    select
        after ->> 'product_name' as product_name,
        (before ->> 'inventory')::integer as inventory_before,
        (after ->> 'inventory')::integer as inventory_now,
        (before ->> 'price_usd')::decimal(12, 2) as price_before_usd,
        (after ->> 'price_usd')::decimal(12, 2) as price_now_usd
    from product_changes
    order by product_name
)

select * from final
