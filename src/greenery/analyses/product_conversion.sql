-- Every product ranked by conversion: sessions that ordered it / sessions that viewed it.
with

conversion as (
    select * from fct_product_conversion
),

final as (
    select
        product_name,
        sessions_viewed,
        sessions_added,
        sessions_ordered,
        conversion_rate
    from conversion
    order by conversion_rate desc nulls last, sessions_viewed desc, product_name asc
)

select * from final
