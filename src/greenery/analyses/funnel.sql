-- Sessions reaching each step of the funnel, and how many each step loses.
-- A step counts the sessions that also reached every step before it.
with

sessions as (
    select * from fct_sessions
),

reached as (
    select
        count(*) as all_sessions,
        count(*) filter (where has_page_view) as viewed_a_product,
        count(*) filter (where has_page_view and has_add_to_cart) as added_to_cart,
        count(*) filter (where has_page_view and has_add_to_cart and has_checkout) as checked_out
    from sessions
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
        step_labels.step_number,
        step_labels.label as step,
        steps.sessions,
        steps.sessions / first_value(steps.sessions) over (order by step_labels.step_number) as share_of_all_sessions,
        steps.sessions / lag(steps.sessions) over (order by step_labels.step_number) as share_of_previous_step,
        lag(steps.sessions) over (order by step_labels.step_number) - steps.sessions as sessions_lost
    from steps
    inner join step_labels on steps.step = step_labels.step
    order by step_labels.step_number
)

select * from final
