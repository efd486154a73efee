with

current_rows as (
    {{ current_rows('hospital_a', 'encounters') }}
),

final as (
    select
        source,
        source_record_id,
        load_id,
        person_record_id,
        cast(ADMIT_DTTM as timestamp) as admitted_at,
        cast(ADMIT_DTTM as date) as admission_date,
        ENC_TYPE as encounter_type_code,
        DX_PRIMARY as diagnosis_code,
        nullif(trim(EXT_CAUSE_CD), '') as external_cause_code,
        DISPOSITION as disposition_code,
        {{ icd10_intent('EXT_CAUSE_CD') }} as injury_intent,
        {{ icd10_is_firearm('EXT_CAUSE_CD') }} as is_firearm_injury
    from current_rows
)

select * from final
