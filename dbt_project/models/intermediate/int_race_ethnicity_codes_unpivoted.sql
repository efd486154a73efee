{#- One row per (person record, field, code): every race and ethnicity answer a source gives, in long form.
    hospital_a's `;`-joined multiracial codes become one row per code. -#}
with

county as (select * from {{ ref('stg_county__clients') }}),
police as (select * from {{ ref('stg_police__persons') }}),
schools as (select * from {{ ref('stg_schools__students') }}),
hospital_a as (select * from {{ ref('stg_hospital_a__patients') }}),
hospital_b as (select * from {{ ref('stg_hospital_b__patients') }}),

county_codes as (
    select source, source_record_id, 'RACE_CD' as field, race_code as code from county
    union all
    select source, source_record_id, 'HISP_IND', ethnicity_code from county
),

police_codes as (
    select source, source_record_id, 'RACE' as field, race_code as code from police
    union all
    select source, source_record_id, 'ETHNICITY', ethnicity_code from police
),

schools_codes as (
    {%- set flags = {'RACE_AMERICAN_INDIAN': 'race_american_indian_code', 'RACE_ASIAN': 'race_asian_code',
                     'RACE_BLACK': 'race_black_code', 'RACE_PACIFIC_ISLANDER': 'race_pacific_islander_code',
                     'RACE_WHITE': 'race_white_code', 'RACE_MENA': 'race_mena_code',
                     'HISPANIC_LATINO': 'ethnicity_code'} %}
    {%- for field, col in flags.items() %}
    select source, source_record_id, '{{ field }}' as field, {{ col }} as code from schools
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

hospital_a_codes as (
    select source, source_record_id, 'RACE_CODE' as field, trim(unnest(string_split(race_code, ';'))) as code
    from hospital_a
    union all
    select source, source_record_id, 'ETHNIC_CODE', ethnicity_code from hospital_a
),

hospital_b_codes as (
    select source, source_record_id, 'RACE_DISP' as field, race_code as code from hospital_b
    union all
    select source, source_record_id, 'ETHNIC_GRP_DISP', ethnicity_code from hospital_b
),

final as (
    select * from county_codes
    union all select * from police_codes
    union all select * from schools_codes
    union all select * from hospital_a_codes
    union all select * from hospital_b_codes
)

select * from final where code is not null
