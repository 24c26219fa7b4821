with

addresses as (
    select * from stg_addresses
),

final as (
    select address_id from addresses
    where not regexp_matches(zipcode, '^[0-9]{5}$')
)

select * from final
