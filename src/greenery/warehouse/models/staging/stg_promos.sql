with

source as (
    select * from raw.promos
),

final as (
    -- The export keys promos by their name; orders refer to that name.
    select
        promo_id,
        discount as discount_usd,
        status as promo_status
    from source
)

select * from final
