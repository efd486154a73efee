{#- ATV and HVIP participants (first enrollment per person and program) with outcomes counted in windows of
    var outcome_window_days: pre = [enrollment - N days, enrollment] (the enrollment day is in the pre window:
    an HVIP enrollment usually follows the injury visit of that day), post = (enrollment, enrollment + N days].
    School absence: the school years that END in the pre window, and those that START in the post window
    (school data are yearly). post_window_complete is false when the data end before the post window does. -#}
with

events as (select * from {{ ref('events') }}),
persons as (select * from {{ ref('persons') }}),
school_years as (select * from {{ ref('int_school_years_keyed') }}),
observation as (select * from {{ ref('int_observation_period') }}),

enrollments as (
    select person_key, program, min(event_date) as enrollment_date
    from events
    where is_program_enrollment and person_key is not null
    group by person_key, program
),

windows as (
    select
        enrollments.*,
        {{ var('outcome_window_days') }} as window_days,
        cast(enrollment_date - to_days({{ var('outcome_window_days') }}) as date) as pre_window_start,
        cast(enrollment_date + to_days({{ var('outcome_window_days') }}) as date) as post_window_end
    from enrollments
),

event_outcomes as (
    select
        windows.person_key,
        windows.program,
        {#- the outcome definitions live once, in governance/defaults.py (var outcome_measures, conditions on e) #}
        {%- for name, cond in var('outcome_measures').items() %}
        count(*) filter (where {{ cond }} and e.event_date between windows.pre_window_start and windows.enrollment_date)
            as {{ name }}_pre,
        count(*) filter (where {{ cond }} and e.event_date > windows.enrollment_date
                                           and e.event_date <= windows.post_window_end) as {{ name }}_post
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from windows
    left join events as e
        on e.person_key = windows.person_key
        and e.event_date between windows.pre_window_start and windows.post_window_end
    group by windows.person_key, windows.program
),

school_outcomes as (
    select
        windows.person_key,
        windows.program,
        sum(school_years.days_absent) filter (where school_years.school_year_end_date between windows.pre_window_start
                                                                                     and windows.enrollment_date)
            as school_absence_days_pre,
        sum(school_years.days_enrolled) filter (where school_years.school_year_end_date between windows.pre_window_start
                                                                                       and windows.enrollment_date)
            as school_days_enrolled_pre,
        sum(school_years.days_absent) filter (where school_years.school_year_start_date > windows.enrollment_date
                                                and school_years.school_year_start_date <= windows.post_window_end)
            as school_absence_days_post,
        sum(school_years.days_enrolled) filter (where school_years.school_year_start_date > windows.enrollment_date
                                                  and school_years.school_year_start_date <= windows.post_window_end)
            as school_days_enrolled_post
    from windows
    inner join school_years on school_years.person_key = windows.person_key
    group by windows.person_key, windows.program
),

final as (
    select
        windows.person_key || ':' || windows.program as cohort_member_id,
        windows.person_key,
        windows.program,
        windows.enrollment_date,
        cast(windows.window_days as integer) as window_days,
        windows.pre_window_start,
        windows.post_window_end,
        observation.observation_end_date,
        windows.post_window_end <= observation.observation_end_date as post_window_complete,
        {{ age_band('year(windows.enrollment_date) - persons.birth_year') }} as age_band_at_enrollment,
        persons.sex,
        persons.race_ethnicity,
        {%- for name in var('outcome_measures') %}
        cast(coalesce(event_outcomes.{{ name }}_pre, 0) as integer) as {{ name }}_pre,
        cast(coalesce(event_outcomes.{{ name }}_post, 0) as integer) as {{ name }}_post,
        {%- endfor %}
        cast(school_outcomes.school_absence_days_pre as integer) as school_absence_days_pre,
        cast(school_outcomes.school_days_enrolled_pre as integer) as school_days_enrolled_pre,
        cast(school_outcomes.school_absence_days_post as integer) as school_absence_days_post,
        cast(school_outcomes.school_days_enrolled_post as integer) as school_days_enrolled_post
    from windows
    cross join observation
    left join persons on persons.person_key = windows.person_key
    left join event_outcomes
        on event_outcomes.person_key = windows.person_key and event_outcomes.program = windows.program
    left join school_outcomes
        on school_outcomes.person_key = windows.person_key and school_outcomes.program = windows.program
)

select * from final
