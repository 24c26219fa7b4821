-- The export watch's findings for this build: its freshness, and each volume or schema change
-- against the previous export (greenery.warehouse.watch), warnings first.
with

findings as (
    select * from export_watch
),

final as (
    select
        check_name,
        subject,
        status,
        message,
        value,
        previous,
        threshold
    from findings
    order by status = 'ok', check_name, subject
)

select * from final
