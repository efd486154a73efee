{#- Primary and complementary suppression of the indicator cells by the line rule (macro complementary_suppression):
    counts 1..min_cell_size-1 hidden, then, while a line has exactly one hidden cell, its smallest published cell
    hidden too. The exact-recoverability audit runs next, in int_violence_indicator_cells_protected. -#}
with

cells as (select * from {{ ref('int_violence_indicator_cells') }}),
lines as (select * from {{ ref('int_violence_indicator_lines') }}),

{{ complementary_suppression('cells', 'lines') }},

final as (
    select cell_id, suppressed, suppression_reason from suppression_result
)

select * from final
