with

addresses as (
    select * from stg_addresses
),

final as (
    select address_id from addresses
    where not regexp_full_match(zipcode, '[0-9]{5}')
)

select * from final
