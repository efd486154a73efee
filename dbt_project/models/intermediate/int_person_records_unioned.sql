{#- Every current person record of the five sources in one shape, with its person key (record match). -#}
with

county as (select * from {{ ref('stg_county__clients') }}),
police as (select * from {{ ref('stg_police__persons') }}),
schools as (select * from {{ ref('stg_schools__students') }}),
hospital_a as (select * from {{ ref('stg_hospital_a__patients') }}),
hospital_b as (select * from {{ ref('stg_hospital_b__patients') }}),
person_map as (select * from {{ ref('stg_linkage__person_map') }}),

unioned as (
    {%- for rel in ['county', 'police', 'schools', 'hospital_a', 'hospital_b'] %}
    select source, source_record_id, loaded_at, birth_year, sex_code, race_reporter_code, zip, census_tract
    from {{ rel }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

final as (
    select
        unioned.*,
        person_map.person_key,
        person_map.match_confidence
    from unioned
    left join person_map
        on person_map.source = unioned.source
        and person_map.source_record_id = unioned.source_record_id
)

select * from final
