{#- School years (days enrolled and absent) with the student's person key. -#}
with

enrollments as (select * from {{ ref('stg_schools__enrollments') }}),
person_records as (select * from {{ ref('int_person_records_unioned') }}),

final as (
    select
        enrollments.source_record_id,
        students.person_key,
        enrollments.school_year,
        enrollments.school_year_start_date,
        enrollments.school_year_end_date,
        enrollments.days_enrolled,
        enrollments.days_absent
    from enrollments
    left join person_records as students
        on students.source = enrollments.source
        and students.source_record_id = enrollments.person_record_id
)

select * from final
