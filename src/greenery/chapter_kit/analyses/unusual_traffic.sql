-- The unusual-traffic rules on this export: for each rule, the accounts and sessions it flags,
-- and how far the flagged accounts stand from everyone else (what the threshold was chosen on).
-- burst: more than $max_sessions_per_hour sessions started in one clock hour by one account;
-- volume: more than $max_sessions_per_account sessions by one account; either: the two together.
with

accounts as (
    select * from fct_account_traffic
),

flags as (
    -- The unusual-traffic rules (account_flags.sql): one row per account with sessions.
    select * from account_flags($max_sessions_per_hour, $max_sessions_per_account)
),

rules (rule_order, rule, threshold) as (
    values
    (1, 'burst', $max_sessions_per_hour),
    (2, 'volume', $max_sessions_per_account),
    (3, 'either', null)
),

measured as (
    select
        rules.rule_order,
        rules.rule,
        rules.threshold,
        accounts.sessions,
        accounts.checkout_sessions,
        case rules.rule
            when 'burst' then accounts.busiest_hour_sessions
            when 'volume' then accounts.sessions
        end as measure,
        case rules.rule
            when 'burst' then flags.is_burst
            when 'volume' then flags.is_volume
            else flags.is_flagged
        end as is_flagged
    from rules
    cross join accounts
    inner join flags on accounts.user_id = flags.user_id
),

final as (
    select
        rule,
        any_value(threshold) as threshold,
        count(*) as accounts,  -- noqa: RF04
        sum(sessions) as sessions,
        count(*) filter (where is_flagged) as flagged_accounts,
        coalesce(sum(sessions) filter (where is_flagged), 0) as flagged_sessions,
        coalesce(sum(checkout_sessions) filter (where is_flagged), 0) as flagged_checkout_sessions,
        max(measure) filter (where not is_flagged) as largest_among_others,
        quantile_disc(measure, 0.99) filter (where not is_flagged) as p99_among_others,
        min(measure) filter (where is_flagged) as smallest_among_flagged
    from measured
    group by rule_order, rule
    order by rule_order
)

select * from final
