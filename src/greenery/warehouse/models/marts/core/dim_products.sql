with

products as (
    select * from stg_products
),

final as (
    select
        product_id,
        product_name,
        price_usd,
        inventory
    from products
)

select * from final
