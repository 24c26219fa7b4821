with

source as (
    select * from raw.order_items
),

final as (
    select
        order_id,
        product_id,
        quantity
    from source
)

select * from final
