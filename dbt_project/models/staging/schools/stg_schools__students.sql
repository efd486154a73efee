with

current_rows as (
    {{ current_rows('schools', 'students') }}
),

final as (
    select
        source,
        source_record_id,
        load_id,
        load_loaded_at as loaded_at,
        cast(birth_year as smallint) as birth_year,
        GENDER as sex_code,
        HISPANIC_LATINO as ethnicity_code,
        RACE_AMERICAN_INDIAN as race_american_indian_code,
        RACE_ASIAN as race_asian_code,
        RACE_BLACK as race_black_code,
        RACE_PACIFIC_ISLANDER as race_pacific_islander_code,
        RACE_WHITE as race_white_code,
        RACE_MENA as race_mena_code,
        RACE_REPORTER as race_reporter_code,
        HOME_ZIP as zip,
        cast(null as varchar) as census_tract
    from current_rows
)

select * from final
