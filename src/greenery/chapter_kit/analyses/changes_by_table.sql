-- Rows new, changed and no longer in the export since the previous build, per snapshot.
with

changes as (
    select * from history_changes
),

final as (
    select
        snapshot,
        change,
        count(*) as row_count
    from changes
    group by snapshot, change
    order by snapshot, change
)

select * from final
