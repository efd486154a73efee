with

current_rows as (
    {{ current_rows('schools', 'suspensions') }}
),

final as (
    select
        source,
        source_record_id,
        load_id,
        person_record_id,
        cast(INCIDENT_DATE as date) as suspension_date,
        SUSP_TYPE as suspension_type_code,
        cast(SUSP_DAYS as integer) as suspension_days,
        REASON_CD as reason_code
    from current_rows
)

select * from final
