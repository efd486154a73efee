with

current_rows as (
    {{ current_rows('hospital_b', 'visits') }}
),

final as (
    select
        source,
        source_record_id,
        load_id,
        person_record_id,
        cast(REG_DT_TM as timestamp) as admitted_at,
        cast(REG_DT_TM as date) as admission_date,
        ENCNTR_TYPE_DISP as encounter_type_code,
        DIAG_CD as diagnosis_code,
        nullif(trim(ECODE), '') as external_cause_code,
        nullif(trim(INTENT_DISP), '') as intent_code,
        nullif(trim(MECHANISM_DISP), '') as mechanism_code
    from current_rows
)

select * from final
