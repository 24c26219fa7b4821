-- Sessions per hour under both common definitions, for all traffic and for shoppers (without
-- the sessions of accounts flagged as unusual traffic): a session counts in the hour it started,
-- or in every clock hour it was active. Each is divided by the hours that had any session and by
-- every hour of the span from the first such hour to the last.
with

session_hours as (
    select * from fct_session_hours
),

flags as (
    -- The unusual-traffic rules (account_flags.sql): one row per account with sessions.
    select * from account_flags($max_sessions_per_hour, $max_sessions_per_account)
),

scopes (traffic) as (
    values ('all traffic'), ('shoppers')
),

definitions (definition_order, definition) as (
    values (1, 'started in the hour'), (2, 'active in the hour')
),

scoped as (
    select
        scopes.traffic,
        definitions.definition_order,
        definitions.definition,
        session_hours.hour_utc
    from session_hours
    left join flags on session_hours.user_id = flags.user_id
    cross join scopes
    cross join definitions
    where
        (scopes.traffic = 'all traffic' or not coalesce(flags.is_flagged, false))
        and (definitions.definition = 'active in the hour' or session_hours.is_start_hour)
),

per_hour as (
    select
        traffic,
        definition_order,
        definition,
        hour_utc,
        count(*) as sessions,
        max(count(*)) over (partition by traffic, definition) as busiest_hour_sessions
    from scoped
    group by traffic, definition_order, definition, hour_utc
),

final as (
    select
        traffic,
        definition,
        sum(sessions) as session_hours,
        count(*) as hours_with_sessions,
        date_diff('hour', min(hour_utc), max(hour_utc)) + 1 as hours_in_span,
        sum(sessions) / count(*) as per_hour_with_sessions,
        sum(sessions) / (date_diff('hour', min(hour_utc), max(hour_utc)) + 1) as per_hour_of_span,
        median(sessions) as median_hour_with_sessions,
        max(sessions) as busiest_hour_sessions,
        min(hour_utc) filter (where sessions = busiest_hour_sessions) as busiest_hour_utc  -- the earliest on a tie
    from per_hour
    group by traffic, definition_order, definition
    order by traffic, definition_order
)

select * from final
