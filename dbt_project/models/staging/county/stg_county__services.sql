with

current_rows as (
    {{ current_rows('county', 'services') }}
),

final as (
    select
        source,
        source_record_id,
        load_id,
        person_record_id,
        DEPT as department_code,
        SERVICE_CD as service_code,
        cast(SERVICE_START_DT as date) as service_start_date,
        cast(SERVICE_END_DT as date) as service_end_date
    from current_rows
)

select * from final
