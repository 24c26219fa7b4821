-- What the export can and cannot say about a buyer's history: how long before their first order
-- in the export each buyer had signed up (orders before the export began are missing), and the
-- repeat rate without the accounts flagged as unusual traffic (with their orders).
with

users as (
    select * from dim_user_order_history
),

flags as (
    -- The unusual-traffic rules (account_flags.sql): one row per account with sessions.
    select * from account_flags($max_sessions_per_hour, $max_sessions_per_account)
),

buyers as (
    select
        users.user_id,
        users.order_count,
        users.is_repeat_buyer,
        coalesce(flags.is_flagged, false) as is_flagged,
        date_diff('day', users.signed_up_at, users.first_order_at) as days_signed_up_before
    from users
    left join flags on users.user_id = flags.user_id
    where users.is_buyer
),

final as (
    select
        count(*) as buyers,
        min(days_signed_up_before) as min_days_signed_up_before,
        max(days_signed_up_before) as max_days_signed_up_before,
        count(*) filter (where days_signed_up_before > 0) as buyers_signed_up_earlier,
        count(*) filter (where is_flagged) as flagged_buyers,
        coalesce(sum(order_count) filter (where is_flagged), 0) as flagged_orders,
        count(*) filter (where is_flagged and is_repeat_buyer) as flagged_repeat_buyers,
        count(*) filter (where not is_flagged) as unflagged_buyers,
        count(*) filter (where not is_flagged and is_repeat_buyer) as unflagged_repeat_buyers
    from buyers
)

select * from final
