-- Every data test of this build with its result, problems first.
select
    name,
    kind,
    model,
    column_name,
    severity,
    rationale,
    status,
    failing_rows,
    failing_keys
from data_test_results
order by
    case status when 'fail' then 0 when 'warn' then 1 else 2 end,
    model,
    name
