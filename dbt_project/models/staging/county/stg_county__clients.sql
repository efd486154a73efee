with

current_rows as (
    {{ current_rows('county', 'clients') }}
),

final as (
    select
        source,
        source_record_id,
        load_id,
        load_loaded_at as loaded_at,
        cast(birth_year as smallint) as birth_year,
        GENDER as sex_code,
        RACE_CD as race_code,
        HISP_IND as ethnicity_code,
        RACE_METHOD as race_reporter_code,
        ZIP as zip,
        CENSUS_TRACT as census_tract
    from current_rows
)

select * from final
