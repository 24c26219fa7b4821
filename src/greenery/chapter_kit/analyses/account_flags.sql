-- The unusual-traffic rules, written once: the table macro
-- account_flags(max_sessions_per_hour, max_sessions_per_account), which every analysis that
-- separates shoppers from flagged accounts calls. One row per account with sessions.
-- burst: more than max_sessions_per_hour sessions started by the account in one clock hour;
-- volume: more than max_sessions_per_account sessions by the account in the export;
-- flagged: either.
with

accounts as (
    select * from fct_account_traffic
),

final as (
    select
        user_id,
        busiest_hour_sessions > max_sessions_per_hour as is_burst,
        sessions > max_sessions_per_account as is_volume,
        busiest_hour_sessions > max_sessions_per_hour
        or sessions > max_sessions_per_account as is_flagged
    from accounts
)

select * from final
