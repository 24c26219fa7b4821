with

source as (
    select * from raw.products
),

final as (
    select
        product_id,
        name as product_name,
        price as price_usd,
        inventory
    from source
)

select * from final
