-- Sessions reaching each step of the funnel, and how many each step loses, for all traffic and
-- for shoppers (without the sessions of accounts flagged as unusual traffic; see unusual_traffic).
-- A step counts the sessions that also reached every step before it.
with

sessions as (
    select * from fct_sessions
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
        sessions.has_page_view,
        sessions.has_add_to_cart,
        sessions.has_checkout
    from sessions
    left join flags on sessions.user_id = flags.user_id
    cross join scopes
    where scopes.traffic = 'all traffic' or not coalesce(flags.is_flagged, false)
),

reached as (
    select
        traffic,
        count(*) as all_sessions,
        count(*) filter (where has_page_view) as viewed_a_product,
        count(*) filter (where has_page_view and has_add_to_cart) as added_to_cart,
        count(*) filter (where has_page_view and has_add_to_cart and has_checkout) as checked_out
    from scoped
    group by traffic
),

steps as (
    unpivot reached
    on all_sessions, viewed_a_product, added_to_cart, checked_out
    into name step value sessions
),

step_labels (step_number, step, label) as (
    values
    (1, 'all_sessions', 'All sessions'),
    (2, 'viewed_a_product', 'Viewed a product'),
    (3, 'added_to_cart', 'Added to cart'),
    (4, 'checked_out', 'Checked out')
),

final as (
    select
        steps.traffic,
        step_labels.step_number,
        step_labels.label as step,
        steps.sessions,
        steps.sessions / first_value(steps.sessions) over by_step as share_of_all_sessions,
        steps.sessions / lag(steps.sessions) over by_step as share_of_previous_step,
        lag(steps.sessions) over by_step - steps.sessions as sessions_lost
    from steps
    inner join step_labels on steps.step = step_labels.step
    window by_step as (partition by steps.traffic order by step_labels.step_number)
    order by steps.traffic, step_labels.step_number
)

select * from final
