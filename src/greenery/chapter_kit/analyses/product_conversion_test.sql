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
    -- the views of sessions that can change, each once however many scopes hold it: a session's
    -- shuffle depends only on the session, its views and its orders, so it is drawn once and counted
    -- in every scope that holds the session (shoppers' sessions are also all traffic's)
    select
        views.session_id,
        views.product_id,
        sessions.viewed,
        sessions.ordered,
        bool_or(views.traffic = 'all traffic') as in_all_traffic,
        bool_or(views.traffic = 'shoppers') as in_shoppers
    from views
    inner join sessions on views.traffic = sessions.traffic and views.session_id = sessions.session_id
    where sessions.ordered > 0 and sessions.ordered < sessions.viewed
    group by views.session_id, views.product_id, sessions.viewed, sessions.ordered
),

keyed as (
    -- whole-number product keys, so that the shuffle below carries numbers rather than ids
    select
        *,
        dense_rank() over (order by product_id) as product_key
    from movable
),

movable_sessions as (
    -- each session once, its views in product order (the order that breaks a tie of hashes)
    select
        session_id,
        ordered,
        in_all_traffic,
        in_shoppers,
        list(product_id order by product_id) as product_ids,
        list(product_key order by product_id) as product_keys
    from keyed
    group by session_id, viewed, ordered, in_all_traffic, in_shoppers
),

product_keys as (
    select distinct
        product_key,
        product_id
    from keyed
),

replicates as (
    select range as replicate from range(1, $permutations + 1)
),

shuffled as (
    -- in each replicate, each session orders the `ordered` of its views that come first by the hash
    select
        replicates.replicate,
        movable_sessions.in_all_traffic,
        movable_sessions.in_shoppers,
        -- one row per session and replicate (not per view): its views' hashes ranked in a list
        unnest(list_select(
            movable_sessions.product_keys,
            list_slice(list_grade_up(list_transform(
                movable_sessions.product_ids,
                lambda product_id: hash(replicates.replicate, movable_sessions.session_id, product_id)  -- noqa: RF02
            )), 1, movable_sessions.ordered)
        )) as product_key
    from movable_sessions
    cross join replicates
),

shuffled_by_scope as (
    select
        replicate,
        product_key,
        in_all_traffic,
        in_shoppers,
        count(*) as ordered
    from shuffled
    group by replicate, product_key, in_all_traffic, in_shoppers
),

shuffled_counts as (
    select
        scopes.traffic,
        shuffled_by_scope.replicate,
        product_keys.product_id,
        sum(shuffled_by_scope.ordered) as ordered
    from shuffled_by_scope
    inner join scopes
        on
            (scopes.traffic = 'all traffic' and shuffled_by_scope.in_all_traffic)
            or (scopes.traffic = 'shoppers' and shuffled_by_scope.in_shoppers)
    inner join product_keys on shuffled_by_scope.product_key = product_keys.product_key
    group by scopes.traffic, shuffled_by_scope.replicate, product_keys.product_id
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
