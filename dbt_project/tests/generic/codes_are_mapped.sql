{#- Every code a partner sends must have a row in its code map (a seed) or be one of `values`.
    An unmapped code fails the test with a message naming the code(s), the source and the field, so a new
    code is added to the seed deliberately instead of being mapped to Unknown by default.
    Args:
      code_map: seed name holding a `code` column (plus `source` / `field` columns when shared by several sources)
      source_name, field: which rows of the seed apply, and what the message names
      values: an inline list instead of a seed (e.g. Y/N flags)
      split_on: the column holds several codes joined by this separator (hospital_a multiracial `;`)
    The failure is raised with DuckDB's error() so that dbt prints the message itself. -#}
{% test codes_are_mapped(model, column_name, code_map=none, source_name=none, field=none, values=none, split_on=none) %}
{%- set where_field = field if field is not none else column_name -%}
{%- set map_columns = [] -%}
{%- if code_map and execute -%}
    {%- set map_columns = adapter.get_columns_in_relation(ref(code_map)) | map(attribute='name') | map('lower') | list -%}
{%- endif -%}
with observed as (
    {%- if split_on %}
    select distinct trim(unnest(string_split({{ column_name }}, '{{ split_on }}'))) as code
    {%- else %}
    select distinct cast({{ column_name }} as varchar) as code
    {%- endif %}
    from {{ model }}
    where {{ column_name }} is not null
),
known as (
    {%- if code_map %}
    select cast(code as varchar) as code from {{ ref(code_map) }}
    where true
    {%- if source_name and 'source' in map_columns %} and source = '{{ source_name }}'{% endif %}
    {%- if field and 'field' in map_columns %} and field = '{{ field }}'{% endif %}
    {%- else %}
    select unnest([{% for v in values %}'{{ v }}'{% if not loop.last %}, {% endif %}{% endfor %}]) as code
    {%- endif %}
),
unmapped as (
    select code from observed where code not in (select code from known)
),
listed as (
    select string_agg(chr(39) || code || chr(39), ', ' order by code) as codes from unmapped
)
-- error() sits in the WHERE clause so that dbt's count(*) wrapper cannot prune it away
select unmapped.code
from unmapped
cross join listed
where error(
    'unmapped source code(s) ' || listed.codes
    || ' in source {{ source_name or "?" }}, field {{ where_field }} ({{ model.identifier }}.{{ column_name }}): '
    || 'add {{ "them to seeds/" ~ code_map ~ ".csv" if code_map else "them to the accepted values" }}; '
    || 'nothing is mapped to Unknown by default'
) is null
{% endtest %}
