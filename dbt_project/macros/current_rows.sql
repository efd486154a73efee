{#- Rows of a raw table that belong to a CURRENT load (raw.loads.is_current), with the load's timestamp.
    A re-sent extract supersedes the earlier load of the same partner, extract and period; superseded rows stay
    in raw for audit but never reach the models. Used only by staging models. -#}
{% macro current_rows(source_name, table_name) -%}
    select raw_rows.*, loads.loaded_at as load_loaded_at, loads.period as load_period
    from {{ source(source_name, table_name) }} as raw_rows
    inner join {{ source('ingest', 'loads') }} as loads
        on loads.load_id = raw_rows.load_id
    where loads.is_current
{%- endmacro %}
