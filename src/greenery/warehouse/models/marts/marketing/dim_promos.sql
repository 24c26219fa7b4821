with

promos as (
    select * from stg_promos
),

final as (
    select
        promo_id,
        discount_usd,
        promo_status,
        promo_status = 'active' as is_active
    from promos
)

select * from final
