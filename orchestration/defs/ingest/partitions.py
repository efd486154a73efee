import dagster as dg

#: Extract periods (YYYY-MM) as partners send them; the landing sensor adds new ones.
extract_periods = dg.DynamicPartitionsDefinition(name="extract_periods")
