with

events as (select * from {{ ref('int_events_located') }}),
persons as (select person_key, birth_year from {{ ref('int_persons_resolved') }}),

final as (
    select
        events.event_id,
        events.person_key,
        events.event_date,
        cast(date_trunc('month', events.event_date) as date) as event_month,
        events.sector,
        events.source,
        events.event_type,
        events.event_code,
        cast(year(events.event_date) - persons.birth_year as integer) as age_at_event,
        {{ age_band('year(events.event_date) - persons.birth_year') }} as age_band_at_event,
        coalesce(events.is_violent_offense_victim, false) as is_violent_offense_victim,
        coalesce(events.is_violent_offense_suspect, false) as is_violent_offense_suspect,
        coalesce(events.is_homicide_victim, false) as is_homicide_victim,
        coalesce(events.is_firearm_involved, false) as is_firearm_involved,
        coalesce(events.is_firearm_injury, false) as is_firearm_injury,
        coalesce(events.is_assault_injury, false) as is_assault_injury,
        coalesce(events.is_assault_ed_visit, false) as is_assault_ed_visit,
        coalesce(events.is_intimate_partner_violence_victim, false) as is_intimate_partner_violence_victim,
        coalesce(events.is_school_suspension_fighting, false) as is_school_suspension_fighting,
        coalesce(events.is_program_enrollment, false) as is_program_enrollment,
        events.program,
        events.census_tract,
        events.neighbourhood,
        events.priority_area,
        events.is_priority_area,
        events.geography_basis,
        events.geography_precision,
        events.match_confidence
    from events
    left join persons on persons.person_key = events.person_key
)

select * from final
