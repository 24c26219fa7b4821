with

events as (
    select * from fct_events
),

final as (
    select session_id from events
    group by session_id
    having count(distinct user_id) > 1
)

select * from final
