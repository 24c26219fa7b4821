-- The published builds of this kind of data, oldest first (the last is this one); `compared` marks
-- the build "what changed" compares with (the one the previous book showed, or the previous build).
select
    build_id,
    built_at,
    data_label,
    rows_read,
    compared
from history_builds
order by build_id
