with

events as (
    select * from stg_events
),

product_events as (
    select * from events
    where product_id is not null
),

final as (
    select
        session_id,
        product_id,
        min(user_id) as user_id,
        min(created_at) as first_seen_at,
        count(*) filter (where event_type = 'page_view') > 0 as was_viewed,
        count(*) filter (where event_type = 'add_to_cart') > 0 as was_added_to_cart
    from product_events
    group by session_id, product_id
)

select * from final
