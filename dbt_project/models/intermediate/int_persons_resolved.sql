{#- One row per person key: the sources' values resolved by the documented rule, with disagreement kept.

    Race/ethnicity rule (source disagreement):
      1. only informative records count (race_ethnicity <> 'Unknown');
      2. prefer the best collection method: self > proxy > unknown (not recorded) > observed;
      3. within that tier: if the records agree, that value; otherwise the most recently loaded record wins
         (ties: source name). Differing self-reports are not combined into 'Multiracial': that would turn a
         disagreement into an identity nobody reported; the latest self-report is the person's current answer;
      4. no informative record: 'Unknown'.
    race_ethnicity_disagreement is true when the informative records name more than one value.
    Sex: the most frequent known value, ties to the most recent record. Birth year: the most frequent, ties
    to the most recent record. Every "most recent" is ordered on (load time, source, record id, value), a key no
    two records share: the same inputs always give the same persons (and the same published cells). -#}
with

records as (
    select
        *,
        case race_ethnicity_collection_method
            when 'self' then 1 when 'proxy' then 2 when 'unknown' then 3 when 'observed' then 4 else 5
        end as method_rank
    from {{ ref('int_person_records_harmonised') }}
    where person_key is not null
),

informative as (
    select * from records where race_ethnicity <> 'Unknown'
),

best_tier as (
    select * from informative
    qualify method_rank = min(method_rank) over (partition by person_key)
),

tier_summary as (
    select
        person_key,
        min(method_rank) as method_rank,
        min(race_ethnicity_collection_method) as collection_method,
        count(distinct race_ethnicity) as tier_values,
        list_sort(list_distinct(flatten(list(race_ethnicity_categories)))) as tier_categories,
        arg_max(race_ethnicity, [loaded_at::varchar, source, source_record_id, race_ethnicity]) as most_recent_value,
        arg_max(race_ethnicity_categories, [loaded_at::varchar, source, source_record_id, race_ethnicity])
            as most_recent_categories
    from best_tier
    group by person_key
),

resolved_race as (
    select
        person_key,
        collection_method,
        most_recent_value as race_ethnicity,
        case when tier_values = 1 then tier_categories else most_recent_categories end as race_ethnicity_categories,
        case
            when tier_values = 1 then 'sources in the best collection tier agree'
            when method_rank = 1 then 'self-reports differ: the most recent self-report'
            else 'most recent record in the best collection tier'
        end as race_ethnicity_rule
    from tier_summary
),

sex_votes as (
    select person_key, sex, count(*) as n, max(loaded_at::varchar || '|' || source || '|' || source_record_id) as latest
    from records
    where sex is not null and sex <> 'Unknown'
    group by person_key, sex
),

resolved_sex as (
    select person_key, arg_max(sex, [n::varchar, latest, sex]) as sex, count(*) > 1 as sex_disagreement
    from (select person_key, sex, lpad(n::varchar, 6, '0') as n, latest from sex_votes)
    group by person_key
),

birth_year_votes as (
    select person_key, birth_year, count(*) as n,
        max(loaded_at::varchar || '|' || source || '|' || source_record_id) as latest
    from records
    where birth_year is not null
    group by person_key, birth_year
),

resolved_birth_year as (
    select person_key, arg_max(birth_year, [lpad(n::varchar, 6, '0'), latest, lpad(birth_year::varchar, 4, '0')])
        as birth_year
    from birth_year_votes
    group by person_key
),

per_source as (
    {#- the most recent record of each source (informative first), so each source's own value is kept -#}
    select
        person_key,
        {%- for s in ['county', 'police', 'schools', 'hospital_a', 'hospital_b'] %}
        arg_max(race_ethnicity, [(race_ethnicity <> 'Unknown')::int::varchar, loaded_at::varchar, source_record_id,
                                 race_ethnicity])
            filter (where source = '{{ s }}') as race_ethnicity_{{ s }},
        {%- endfor %}
        list_sort(list(race_ethnicity_source_value)) as race_ethnicity_source_values,
        list_sort(list_distinct(list(source))) as sources,
        count(distinct race_ethnicity) filter (where race_ethnicity <> 'Unknown') as informative_values,
        min(case match_confidence when 'high' then 1 when 'medium' then 2 when 'low' then 3 else 4 end) as best_confidence,
        max(case match_confidence when 'high' then 1 when 'medium' then 2 when 'low' then 3 else 4 end) as worst_confidence,
        min(mapping_version) as mapping_version
    from records
    group by person_key
),

final as (
    select
        per_source.person_key,
        resolved_birth_year.birth_year,
        coalesce(resolved_sex.sex, 'Unknown') as sex,
        coalesce(resolved_sex.sex_disagreement, false) as sex_disagreement,
        coalesce(resolved_race.race_ethnicity, 'Unknown') as race_ethnicity,
        coalesce(resolved_race.collection_method, 'unknown') as race_ethnicity_collection_method,
        coalesce(resolved_race.race_ethnicity_rule, 'no informative record') as race_ethnicity_rule,
        coalesce(resolved_race.race_ethnicity_categories, []::varchar[]) as race_ethnicity_categories,
        per_source.informative_values > 1 as race_ethnicity_disagreement,
        {%- for s in ['county', 'police', 'schools', 'hospital_a', 'hospital_b'] %}
        per_source.race_ethnicity_{{ s }},
        {%- endfor %}
        per_source.race_ethnicity_source_values,
        per_source.mapping_version,
        per_source.sources,
        case per_source.worst_confidence
            when 1 then 'high' when 2 then 'medium' when 3 then 'low' else 'singleton'
        end as weakest_match_confidence
    from per_source
    left join resolved_race using (person_key)
    left join resolved_sex using (person_key)
    left join resolved_birth_year using (person_key)
)

select * from final
