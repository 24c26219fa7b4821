-- Do products convert differently once viewed? A permutation test at the session level, for all traffic
-- and for shoppers: a session's product views are not independent (a buying session buys several), so
-- each replicate keeps every session's own number of viewed products it ordered and shuffles only
-- which of its viewed products those were. The statistic is the chi-square of products x (ordered, not),
-- sum over products of (ordered - viewed * pooled rate)^2 / (viewed * pooled rate * (1 - pooled rate));
-- p = (1 + replicates at least as large as the observed) / (1 + replicates). Sessions that ordered all
-- or none of the products they viewed cannot change under a shuffle and are held fixed. The shuffle is
-- a hash of (replicate, session, product): the same data gives the same p-value on every run.
with

session_products as (
    select * from fct_session_products
),

flags as (
    -- The unusual-traffic rules (account_flags.sql): one row per account with sessions.
    select * from account_flags($max_sessions_per_hour, $max_sessions_per_account)
),

scopes (traffic) as (
    values ('all traffic'), ('shoppers')
),

views as (
    select
        scopes.traffic,
        session_products.session_id,
        session_products.product_id,
        cast(session_products.was_ordered as integer) as ordered
    from session_products
    left join flags on session_products.user_id = flags.user_id
    cross join scopes
    where
        session_products.was_viewed
        and (scopes.traffic = 'all traffic' or not coalesce(flags.is_flagged, false))
),

sessions as (
    select
        traffic,
        session_id,
        count(*) as viewed,
        sum(ordered) as ordered
    from views
    group by traffic, session_id
),

products as (
    select
        views.traffic,
        views.product_id,
        count(*) as viewed,
        sum(views.ordered) as ordered,
        -- what the shuffle cannot move: orders from sessions that ordered all or none of their views
        sum(views.ordered) filter (where sessions.ordered in (0, sessions.viewed)) as fixed_ordered
    from views
    inner join sessions on views.traffic = sessions.traffic and views.session_id = sessions.session_id
    group by views.traffic, views.product_id
),

pooled as (
    select
        traffic,
        sum(ordered) / sum(viewed) as rate
    from products
    group by traffic
),

weights as (
    -- each product's expected orders and the variance its term is divided by
    select
        products.traffic,
        products.product_id,
        products.viewed * pooled.rate as expected,
        products.viewed * pooled.rate * (1 - pooled.rate) as variance,
        coalesce(products.fixed_ordered, 0) as fixed_ordered
    from products
    inner join pooled on products.traffic = pooled.traffic
    where pooled.rate > 0 and pooled.rate < 1
),

observed as (
    select
        weights.traffic,
        sum((products.ordered - weights.expected) ^ 2 / weights.variance) as statistic,
        count(*) - 1 as degrees_of_freedom
    from weights
    inner join products on weights.traffic = products.traffic and weights.product_id = products.product_id
    group by weights.traffic
),

movable as (
    select views.*
    from views
    inner join sessions on views.traffic = sessions.traffic and views.session_id = sessions.session_id
    where sessions.ordered > 0 and sessions.ordered < sessions.viewed
),

replicates as (
    select range as replicate from range(1, $permutations + 1)
),

shuffled as (
    select
        movable.traffic,
        replicates.replicate,
        movable.product_id,
        row_number() over (
            partition by movable.traffic, replicates.replicate, movable.session_id
            order by hash(replicates.replicate, movable.session_id, movable.product_id), movable.product_id
        ) <= sessions.ordered as ordered
    from movable
    cross join replicates
    inner join sessions on movable.traffic = sessions.traffic and movable.session_id = sessions.session_id
),

shuffled_counts as (
    select
        traffic,
        replicate,
        product_id,
        count(*) filter (where ordered) as ordered
    from shuffled
    group by traffic, replicate, product_id
),

replicate_statistics as (
    select
        weights.traffic,
        replicates.replicate,
        sum(
            (weights.fixed_ordered + coalesce(shuffled_counts.ordered, 0) - weights.expected) ^ 2 / weights.variance
        ) as statistic
    from weights
    cross join replicates
    left join shuffled_counts
        on
            weights.traffic = shuffled_counts.traffic
            and replicates.replicate = shuffled_counts.replicate
            and weights.product_id = shuffled_counts.product_id
    group by weights.traffic, replicates.replicate
),

as_large as (
    select
        observed.traffic,
        -- a relative tolerance: the same table summed in another order is the same statistic
        count(*) filter (where replicate_statistics.statistic >= observed.statistic * (1 - 1e-9)) as replicates
    from observed
    inner join replicate_statistics on observed.traffic = replicate_statistics.traffic
    group by observed.traffic
),

session_counts as (
    select
        traffic,
        count(*) as sessions,
        count(*) filter (where ordered > 0 and ordered < viewed) as sessions_that_can_move
    from sessions
    group by traffic
),

final as (
    select
        scopes.traffic,
        coalesce(session_counts.sessions, 0) as sessions,
        coalesce(session_counts.sessions_that_can_move, 0) as sessions_that_can_move,
        observed.statistic,
        observed.degrees_of_freedom,
        $permutations as permutations,
        (1 + as_large.replicates) / (1 + $permutations) as p_value
    from scopes
    left join session_counts on scopes.traffic = session_counts.traffic
    left join observed on scopes.traffic = observed.traffic
    left join as_large on scopes.traffic = as_large.traffic
    order by scopes.traffic
)

select * from final
