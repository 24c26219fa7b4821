-- Orders whose status moved since the previous build, one row per move, naming up to $shown orders each.
with

order_changes as (
    select * from history_changes
    where snapshot = 'orders_snapshot' and change = 'changed'
),

moves as (
    select
        key as order_id,
        before ->> 'order_status' as status_before,
        after ->> 'order_status' as status_after
    from order_changes
),

final as (
    select
        status_before,
        status_after,
        count(*) as orders,
        array_slice(list(order_id order by order_id), 1, $shown) as some_orders
    from moves
    where status_before is distinct from status_after
    group by status_before, status_after
    order by orders desc, status_before asc, status_after asc
)

select * from final
