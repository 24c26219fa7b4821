with

session_products as (
    select * from fct_session_products
),

products as (
    select * from dim_products
),

per_product as (
    -- Of the sessions that viewed a product, how many added it and how many ordered it.
    select
        product_id,
        count(*) filter (where was_viewed) as sessions_viewed,
        count(*) filter (where was_viewed and was_added_to_cart) as sessions_added,
        count(*) filter (where was_viewed and was_ordered) as sessions_ordered
    from session_products
    group by product_id
),

final as (
    select
        products.product_id,
        products.product_name,
        coalesce(per_product.sessions_viewed, 0) as sessions_viewed,
        coalesce(per_product.sessions_added, 0) as sessions_added,
        coalesce(per_product.sessions_ordered, 0) as sessions_ordered,
        per_product.sessions_ordered / nullif(per_product.sessions_viewed, 0) as conversion_rate
    from products
    left join per_product on products.product_id = per_product.product_id
)

select * from final
