-- Rows read from each file of the export.
select
    table_name,
    row_count
from raw_row_counts
