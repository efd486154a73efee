with

current_rows as (
    {{ current_rows('hospital_a', 'patients') }}
),

final as (
    select
        source,
        source_record_id,
        load_id,
        load_loaded_at as loaded_at,
        cast(birth_year as smallint) as birth_year,
        SEX_C as sex_code,
        -- CDC Race & Ethnicity codes; a multiracial patient has several codes joined by ';'
        RACE_CODE as race_code,
        ETHNIC_CODE as ethnicity_code,
        -- the extract does not say who reported race (self at registration, or staff)
        'NOT_RECORDED' as race_reporter_code,
        ZIP as zip,
        -- the residence tract the hospital's kit looked up from the address it holds (partner_kit.geocode); null
        -- where the address-points file has no single tract for it
        RESIDENCE_TRACT as census_tract
    from current_rows
)

select * from final
