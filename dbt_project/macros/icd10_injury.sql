{#- Intent and mechanism of an ICD-10-CM external-cause code, by the CDC external-cause matrix ranges
    (three-character categories). Returns null for a blank code (not an injury) and 'unclassified' for a code
    outside the ranges below: a data test fails on 'unclassified', so no code is silently dropped.
      assault X92-Y09; self-harm X71-X83; undetermined Y21-Y33; legal intervention Y35; unintentional V00-X58
      firearm: W32-W34, X72-X74, X93-X95, Y22-Y24, Y35.0 -#}
{% macro icd10_intent(code) -%}
    case
        when nullif(trim({{ code }}), '') is null then null
        when left({{ code }}, 3) between 'X92' and 'Y09' then 'assault'
        when left({{ code }}, 3) between 'X71' and 'X83' then 'self_harm'
        when left({{ code }}, 3) between 'Y21' and 'Y33' then 'undetermined'
        when left({{ code }}, 3) = 'Y35' then 'legal_intervention'
        when left({{ code }}, 3) between 'V00' and 'X58' then 'unintentional'
        else 'unclassified'
    end
{%- endmacro %}

{% macro icd10_is_firearm(code) -%}
    coalesce(
        left({{ code }}, 3) between 'W32' and 'W34'
        or left({{ code }}, 3) between 'X72' and 'X74'
        or left({{ code }}, 3) between 'X93' and 'X95'
        or left({{ code }}, 3) between 'Y22' and 'Y24'
        or left({{ code }}, 4) = 'Y35.0',
        false)
{%- endmacro %}
