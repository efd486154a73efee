{#- A partner's Y/N flag as a boolean (anything else is null; the staging YAML tests that nothing else occurs). -#}
{% macro yes_no(column) -%}
    case {{ column }} when 'Y' then true when 'N' then false end
{%- endmacro %}
