{#- Age band from an age in whole years. The bands come from governance/defaults.py (var age_bands, passed by
    every dbt run): CDC WISQARS youth-violence reporting (10-24 split at 14/17) and ten-year adult bands; null or
    negative ages give 'Unknown'. Age is computed from birth year only (no exact DOB in the analytics zone), so it
    can be one year too high for events before the birthday. -#}
{% macro age_band(age) -%}
    case
        when {{ age }} is null or {{ age }} < 0 then 'Unknown'
        {%- for label, upper in var('age_bands') %}
        {%- if upper is not none %}
        when {{ age }} < {{ upper }} then '{{ label }}'
        {%- else %}
        else '{{ label }}'
        {%- endif %}
        {%- endfor %}
    end
{%- endmacro %}

{% macro age_bands() -%}
    {{ return(var('age_bands') | map(attribute=0) | list + ['Unknown']) }}
{%- endmacro %}
