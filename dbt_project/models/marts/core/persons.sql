with

persons as (select * from {{ ref('int_persons_resolved') }}),
observation as (select * from {{ ref('int_observation_period') }}),

final as (
    select
        persons.person_key,
        cast(persons.birth_year as smallint) as birth_year,
        observation.reference_date,
        cast(year(observation.reference_date) - persons.birth_year as integer) as age_at_reference,
        {{ age_band('year(observation.reference_date) - persons.birth_year') }} as age_band,
        persons.sex,
        persons.sex_disagreement,
        persons.race_ethnicity,
        persons.race_ethnicity_collection_method,
        persons.race_ethnicity_rule,
        persons.race_ethnicity_categories,
        persons.race_ethnicity_disagreement,
        persons.race_ethnicity_county,
        persons.race_ethnicity_police,
        persons.race_ethnicity_schools,
        persons.race_ethnicity_hospital_a,
        persons.race_ethnicity_hospital_b,
        persons.race_ethnicity_source_values,
        persons.mapping_version as race_ethnicity_mapping_version,
        persons.sources,
        persons.weakest_match_confidence
    from persons
    cross join observation
)

select * from final
