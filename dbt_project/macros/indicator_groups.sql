{#- The published categories of each demographic dimension (a dense table: every category appears, zero or not). -#}
{% macro race_ethnicity_categories() -%}
    {{ return(['American Indian or Alaska Native', 'Asian', 'Black or African American', 'Hispanic or Latino',
               'Middle Eastern or North African', 'Native Hawaiian or Pacific Islander', 'White', 'Multiracial',
               'Some other race', 'Unknown']) }}
{%- endmacro %}

{% macro sex_categories() -%}
    {{ return(['Female', 'Male', 'X', 'Unknown']) }}
{%- endmacro %}

{% macro violence_indicators() -%}
    {#- indicator -> condition on the events mart (one event row = one count) -#}
    {{ return({
        'homicides': 'is_homicide_victim',
        'violent_crimes': 'is_violent_offense_victim',
        'firearm_injuries': "sector = 'hospital' and is_firearm_injury",
        'youth_violence': "(is_violent_offense_victim or (sector = 'hospital' and is_assault_injury)) and age_at_event between 10 and 24",
        'intimate_partner_violence': 'is_intimate_partner_violence_victim',
        'violence_related_ed_visits': 'is_assault_ed_visit',
    }) }}
{%- endmacro %}
