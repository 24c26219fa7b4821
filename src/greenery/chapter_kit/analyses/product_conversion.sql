-- Every product's conversion (sessions that viewed it and ordered it / sessions that viewed it),
-- for all traffic and for shoppers (without the sessions of accounts flagged as unusual traffic).
with

session_products as (
    select * from fct_session_products
),

products as (
    select * from dim_products
),

flags as (
    -- The unusual-traffic rules (account_flags.sql): one row per account with sessions.
    select * from account_flags($max_sessions_per_hour, $max_sessions_per_account)
),

scopes (traffic) as (
    values ('all traffic'), ('shoppers')
),

scoped as (
    select
        scopes.traffic,
        session_products.product_id,
        session_products.was_viewed,
        session_products.was_added_to_cart,
        session_products.was_ordered
    from session_products
    left join flags on session_products.user_id = flags.user_id
    cross join scopes
    where scopes.traffic = 'all traffic' or not coalesce(flags.is_flagged, false)
),

per_product as (
    select
        traffic,
        product_id,
        count(*) filter (where was_viewed) as sessions_viewed,
        count(*) filter (where was_viewed and was_added_to_cart) as sessions_added,
        count(*) filter (where was_viewed and was_ordered) as sessions_ordered
    from scoped
    group by traffic, product_id
),

final as (
    select
        scopes.traffic,
        products.product_name,
        coalesce(per_product.sessions_viewed, 0) as sessions_viewed,
        coalesce(per_product.sessions_added, 0) as sessions_added,
        coalesce(per_product.sessions_ordered, 0) as sessions_ordered,
        per_product.sessions_ordered / nullif(per_product.sessions_viewed, 0) as conversion_rate
    from products
    cross join scopes
    left join per_product
        on products.product_id = per_product.product_id and scopes.traffic = per_product.traffic
    order by scopes.traffic, products.product_name
)

select * from final
