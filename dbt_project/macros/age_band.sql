{#- Age band from an age in whole years. The bands follow CDC WISQARS youth-violence reporting (10-24 split at
    14/17) and ten-year adult bands; null or negative ages give 'Unknown'. Age is computed from birth year only
    (no exact DOB in the analytics zone), so it can be one year too high for events before the birthday. -#}
{% macro age_band(age) -%}
    case
        when {{ age }} is null or {{ age }} < 0 then 'Unknown'
        when {{ age }} < 10 then '0-9'
        when {{ age }} < 15 then '10-14'
        when {{ age }} < 18 then '15-17'
        when {{ age }} < 25 then '18-24'
        when {{ age }} < 35 then '25-34'
        when {{ age }} < 45 then '35-44'
        when {{ age }} < 55 then '45-54'
        when {{ age }} < 65 then '55-64'
        else '65+'
    end
{%- endmacro %}

{% macro age_bands() -%}
    {{ return(['0-9', '10-14', '15-17', '18-24', '25-34', '35-44', '45-54', '55-64', '65+', 'Unknown']) }}
{%- endmacro %}
