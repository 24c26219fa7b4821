with

source as (
    select * from raw.addresses
),

final as (
    select
        address_id,
        address as street_address,
        zipcode,
        state,
        country
    from source
)

select * from final
