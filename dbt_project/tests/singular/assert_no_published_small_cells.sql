-- No published indicator cell holds a count between 1 and min_cell_size - 1 (zeros are published).
select period_type, period_start, period_end, indicator, geography_level, geography, demographic_dimension, demographic_group, event_count
from {{ ref('community_violence_indicators') }}
where not suppressed and event_count between 1 and {{ var('min_cell_size', 11) - 1 }}
   or (suppressed and event_count is not null)
