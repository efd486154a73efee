{#- Each person record's sex and race/ethnicity on the common vocabulary, with the source value kept.

    Record rule, 2024 OMB SPD 15 (one combined race/ethnicity question, Hispanic or Latino one of its seven
    minimum categories; documented in _intermediate__models.yml and the persons mart):
      1. Multiracial (multiracial and/or multiethnic) when the record names two or more categories, counting a
         Hispanic answer as one, or carries the source's own multiracial code; 'Some other race' beside a Hispanic
         answer is the old two-question form's way of saying Hispanic and does not count as a second category;
      2. Hispanic or Latino when that is the only category;
      3. the one race category named;
      4. Unknown when nothing informative was answered (declined / unknown codes, all flags N).
    race_ethnicity_categories keeps every category named (Hispanic or Latino included), so analyses can count
    "alone or in combination".
    Codes are mapped only through seeds; an unmapped code fails codes_are_mapped before this model is used. -#}
with

records as (select * from {{ ref('int_person_records_unioned') }}),
codes as (select * from {{ ref('int_race_ethnicity_codes_unpivoted') }}),
race_map as (select * from {{ ref('race_ethnicity_codes') }}),
sex_map as (select * from {{ ref('sex_codes') }}),
method_map as (select * from {{ ref('collection_methods') }}),

coded as (
    select
        codes.source,
        codes.source_record_id,
        codes.field,
        codes.code,
        race_map.race_category,
        race_map.hispanic,
        race_map.known
    from codes
    left join race_map
        on race_map.source = codes.source
        and race_map.field = codes.field
        and race_map.code = codes.code
),

per_record as (
    select
        source,
        source_record_id,
        list_sort(list_distinct(list(race_category) filter (where race_category is not null))) as race_components,
        bool_or(hispanic) filter (where hispanic is not null) as is_hispanic,
        string_agg(field || '=' || code, ';' order by field, code) as source_value
    from coded
    group by source, source_record_id
),

categorised as (
    select
        *,
        case
            when list_contains(race_components, 'Multiracial') then 'Multiracial'
            when coalesce(is_hispanic, false)
                 and len(list_filter(race_components, lambda c: c <> 'Some other race')) >= 1 then 'Multiracial'
            when coalesce(is_hispanic, false) then 'Hispanic or Latino'
            when len(race_components) >= 2 then 'Multiracial'
            when len(race_components) = 1 then race_components[1]
            else 'Unknown'
        end as race_ethnicity,
        list_sort(list_distinct(
            case when coalesce(is_hispanic, false)
                 then list_append(list_filter(race_components, lambda c: c <> 'Some other race'), 'Hispanic or Latino')
                 else race_components end)) as race_ethnicity_categories
    from per_record
),

final as (
    select
        records.source,
        records.source_record_id,
        records.person_key,
        records.match_confidence,
        records.loaded_at,
        records.birth_year,
        sex_map.sex,
        records.sex_code as sex_source_value,
        coalesce(categorised.race_ethnicity, 'Unknown') as race_ethnicity,
        coalesce(categorised.race_components, []::varchar[]) as race_components,
        coalesce(categorised.race_ethnicity_categories, []::varchar[]) as race_ethnicity_categories,
        categorised.is_hispanic,
        records.source || ':' || coalesce(categorised.source_value, '') as race_ethnicity_source_value,
        method_map.collection_method as race_ethnicity_collection_method,
        '{{ var("code_map_version") }}' as mapping_version
    from records
    left join categorised
        on categorised.source = records.source
        and categorised.source_record_id = records.source_record_id
    left join sex_map
        on sex_map.source = records.source
        and sex_map.code = records.sex_code
    left join method_map
        on method_map.source = records.source
        and method_map.code = records.race_reporter_code
)

select * from final
