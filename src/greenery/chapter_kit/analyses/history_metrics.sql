-- The headline metrics of every export of this kind of data in the history, oldest first: one row per
-- export and metric, as its first build recorded them (greenery.warehouse.metrics defines each).
with

metrics as (
    select * from history_metrics
),

final as (
    select
        build_id,
        built_at,
        metric,
        version,
        kind,
        value,
        numerator,
        denominator,
        sd,
        ci_low,
        ci_high
    from metrics
    order by build_id, metric
)

select * from final
