-- Every model in build order with its rows (null for a view: the build does not compute views to count them).
select
    model,
    folder,
    materialized,
    row_count
from model_runs
