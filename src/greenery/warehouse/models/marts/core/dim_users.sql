with

users as (
    select * from stg_users
),

addresses as (
    select * from stg_addresses
),

final as (
    -- Personal data (names, email, phone, street) stays in staging: no mart carries it.
    select
        users.user_id,
        users.address_id,
        addresses.zipcode,
        addresses.state,
        addresses.country,
        users.created_at,
        users.updated_at
    from users
    left join addresses on users.address_id = addresses.address_id
)

select * from final
