-- What this warehouse was built from and when (no local paths: the data folder is not selected).
select
    data_kind,
    data_label,
    chosen_by,
    built_at,
    greenery_version,
    first_event_at,
    last_event_at,
    first_order_at,
    last_order_at,
    rows_read,
    fingerprint,
    build_id
from build_info
