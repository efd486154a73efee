"""Linkage: partner-side encoding (``linkage.encoding``, light) and warehouse-side Splink linkage.

Importing ``linkage`` or ``linkage.encoding`` must never import Dagster, dbt, Splink or Great
Expectations: the encoding half runs at partner agencies with only light dependencies.
"""
