-- Orders and revenue per calendar day (UTC).
with

orders as (
    select * from fct_orders
),

final as (
    select
        created_at::date as order_date,
        count(*) as orders,
        sum(order_total_usd) as revenue_usd
    from orders
    group by created_at::date
    order by order_date
)

select * from final
