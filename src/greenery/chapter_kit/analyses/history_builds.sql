-- The published builds of this kind of data, oldest first (the last is this one).
select
    build_id,
    built_at,
    data_label,
    rows_read
from history_builds
order by build_id
