{#- Every event of every sector in one shape, with the person key (record match through the person record of
    the same source), the violence flags, and a geography (incident location, else residence). -#}
with

incidents as (select * from {{ ref('stg_police__incident_persons') }}),
services as (select * from {{ ref('stg_county__services') }}),
suspensions as (select * from {{ ref('stg_schools__suspensions') }}),
encounters_a as (select * from {{ ref('stg_hospital_a__encounters') }}),
visits_b as (select * from {{ ref('stg_hospital_b__visits') }}),
person_records as (select * from {{ ref('int_person_records_unioned') }}),
offense_codes as (select * from {{ ref('police_offense_codes') }}),
roles as (select * from {{ ref('police_roles') }}),
service_codes as (select * from {{ ref('county_service_codes') }}),
suspension_reasons as (select * from {{ ref('school_suspension_reasons') }}),
hospital_codes as (select * from {{ ref('hospital_codes') }}),

police_events as (
    select
        incidents.source,
        incidents.source_record_id,
        incidents.person_record_id,
        incidents.incident_date as event_date,
        'police' as sector,
        roles.event_type,
        incidents.offense_code as event_code,
        incidents.is_violent and incidents.role_code = 'VIC' as is_violent_offense_victim,
        incidents.is_violent and incidents.role_code in ('SUS', 'ARR') as is_violent_offense_suspect,
        offense_codes.is_homicide and incidents.role_code = 'VIC' as is_homicide_victim,
        incidents.is_firearm as is_firearm_involved,
        false as is_firearm_injury,
        false as is_assault_injury,
        false as is_assault_ed_visit,
        incidents.is_domestic and incidents.is_violent and incidents.role_code = 'VIC' as is_intimate_partner_violence_victim,
        false as is_school_suspension_fighting,
        false as is_program_enrollment,
        cast(null as varchar) as program,
        incidents.census_tract,
        incidents.zip,
        'incident location' as geography_basis
    from incidents
    left join roles on roles.code = incidents.role_code
    left join offense_codes on offense_codes.code = incidents.offense_code
),

county_events as (
    select
        services.source,
        services.source_record_id,
        services.person_record_id,
        services.service_start_date as event_date,
        'county_services' as sector,
        case when service_codes.program is not null then 'program_enrollment' else 'service_start' end as event_type,
        services.service_code as event_code,
        false, false, false, false, false, false, false, false, false,
        service_codes.program is not null as is_program_enrollment,
        service_codes.program,
        clients.census_tract,
        clients.zip,
        'residence (client record)' as geography_basis
    from services
    left join service_codes on service_codes.code = services.service_code
    left join person_records as clients
        on clients.source = services.source
        and clients.source_record_id = services.person_record_id
),

school_events as (
    select
        suspensions.source,
        suspensions.source_record_id,
        suspensions.person_record_id,
        suspensions.suspension_date as event_date,
        'schools' as sector,
        'school_suspension_' || lower(suspensions.suspension_type_code) as event_type,
        suspensions.reason_code as event_code,
        false, false, false, false, false, false, false, false,
        suspension_reasons.is_fighting as is_school_suspension_fighting,
        false,
        cast(null as varchar),
        cast(null as varchar) as census_tract,
        students.zip,
        'residence ZIP (student record)' as geography_basis
    from suspensions
    left join suspension_reasons on suspension_reasons.code = suspensions.reason_code
    left join person_records as students
        on students.source = suspensions.source
        and students.source_record_id = suspensions.person_record_id
),

hospital_a_events as (
    select
        encounters_a.source,
        encounters_a.source_record_id,
        encounters_a.person_record_id,
        encounters_a.admission_date as event_date,
        'hospital' as sector,
        enc_type.maps_to as event_type,
        coalesce(encounters_a.external_cause_code, encounters_a.diagnosis_code) as event_code,
        false, false, false, false,
        encounters_a.is_firearm_injury,
        encounters_a.injury_intent = 'assault' as is_assault_injury,
        encounters_a.injury_intent = 'assault' and enc_type.maps_to = 'ed_visit' as is_assault_ed_visit,
        false, false, false,
        cast(null as varchar),
        patients.census_tract,
        patients.zip,
        case when patients.census_tract is not null then 'residence tract (patient record, geocoded by the hospital)'
             else 'residence ZIP (patient record)' end as geography_basis
    from encounters_a
    left join hospital_codes as enc_type
        on enc_type.source = encounters_a.source and enc_type.field = 'ENC_TYPE'
        and enc_type.code = encounters_a.encounter_type_code
    left join person_records as patients
        on patients.source = encounters_a.source
        and patients.source_record_id = encounters_a.person_record_id
),

hospital_b_classified as (
    select
        visits_b.*,
        enc_type.maps_to as event_type,
        -- display text first; the ICD-10-CM external-cause code when the text is blank
        coalesce(intent.maps_to, {{ icd10_intent('visits_b.external_cause_code') }}) as injury_intent,
        coalesce(mechanism.maps_to = 'firearm', {{ icd10_is_firearm('visits_b.external_cause_code') }}) as is_firearm_injury
    from visits_b
    left join hospital_codes as enc_type
        on enc_type.source = visits_b.source and enc_type.field = 'ENCNTR_TYPE_DISP'
        and enc_type.code = visits_b.encounter_type_code
    left join hospital_codes as intent
        on intent.source = visits_b.source and intent.field = 'INTENT_DISP' and intent.code = visits_b.intent_code
    left join hospital_codes as mechanism
        on mechanism.source = visits_b.source and mechanism.field = 'MECHANISM_DISP'
        and mechanism.code = visits_b.mechanism_code
),

hospital_b_events as (
    select
        visits.source,
        visits.source_record_id,
        visits.person_record_id,
        visits.admission_date as event_date,
        'hospital' as sector,
        visits.event_type,
        coalesce(visits.external_cause_code, visits.diagnosis_code) as event_code,
        false, false, false, false,
        visits.is_firearm_injury,
        visits.injury_intent = 'assault' as is_assault_injury,
        visits.injury_intent = 'assault' and visits.event_type = 'ed_visit' as is_assault_ed_visit,
        false, false, false,
        cast(null as varchar),
        patients.census_tract,
        patients.zip,
        case when patients.census_tract is not null then 'residence tract (patient record, geocoded by the hospital)'
             else 'residence ZIP (patient record)' end as geography_basis
    from hospital_b_classified as visits
    left join person_records as patients
        on patients.source = visits.source
        and patients.source_record_id = visits.person_record_id
),

unioned as (
    select * from police_events
    union all select * from county_events
    union all select * from school_events
    union all select * from hospital_a_events
    union all select * from hospital_b_events
),

final as (
    select
        unioned.source || ':' || unioned.source_record_id as event_id,
        unioned.*,
        persons.person_key,
        persons.match_confidence
    from unioned
    left join person_records as persons
        on persons.source = unioned.source
        and persons.source_record_id = unioned.person_record_id
)

select * from final
