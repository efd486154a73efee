with

current_rows as (
    {{ current_rows('police', 'incident_persons') }}
),

final as (
    select
        source,
        source_record_id,
        load_id,
        person_record_id,
        incident_ref,
        ROLE as role_code,
        OFFENSE_CD as offense_code,
        VIOLENT_FLAG as violent_flag_code,
        FIREARM_FLAG as firearm_flag_code,
        DOMESTIC_FLAG as domestic_flag_code,
        {{ yes_no('VIOLENT_FLAG') }} as is_violent,
        {{ yes_no('FIREARM_FLAG') }} as is_firearm,
        {{ yes_no('DOMESTIC_FLAG') }} as is_domestic,
        cast(INCIDENT_DT as timestamp) as incident_at,
        cast(INCIDENT_DT as date) as incident_date,
        CENSUS_TRACT as census_tract,
        ZIP as zip
    from current_rows
)

select * from final
