with

order_lines as (
    select * from int_order_lines
),

final as (
    select
        order_id,
        count(*) as product_count,
        sum(quantity) as unit_count,
        sum(line_amount_usd) as items_amount_usd
    from order_lines
    group by order_id
)

select * from final
