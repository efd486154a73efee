with

current_rows as (
    {{ current_rows('hospital_b', 'patients') }}
),

final as (
    select
        source,
        source_record_id,
        load_id,
        load_loaded_at as loaded_at,
        cast(birth_year as smallint) as birth_year,
        SEX_CD as sex_code,
        RACE_DISP as race_code,
        ETHNIC_GRP_DISP as ethnicity_code,
        'NOT_RECORDED' as race_reporter_code,
        ZIPCODE as zip,
        -- the residence tract the hospital's kit looked up from the address it holds (partner_kit.geocode); null
        -- where the address-points file has no single tract for it
        RESIDENCE_TRACT as census_tract
    from current_rows
)

select * from final
