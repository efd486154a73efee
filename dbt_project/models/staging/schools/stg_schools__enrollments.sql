with

current_rows as (
    {{ current_rows('schools', 'enrollments') }}
),

final as (
    select
        source,
        source_record_id,
        load_id,
        person_record_id,
        SCHOOL_YEAR as school_year,
        -- a school year 'YYYY-YYYY' runs from 1 August of its first year to 30 June of its second
        make_date(cast(left(SCHOOL_YEAR, 4) as integer), 8, 1) as school_year_start_date,
        make_date(cast(right(SCHOOL_YEAR, 4) as integer), 6, 30) as school_year_end_date,
        SCHOOL_CODE as school_code,
        GRADE_LEVEL as grade_level,
        cast(DAYS_ENROLLED as integer) as days_enrolled,
        cast(DAYS_ABSENT as integer) as days_absent
    from current_rows
)

select * from final
