"""Linkage: partner-side encoding (``partner_kit``, light) and warehouse-side Splink linkage.

Importing ``linkage`` or ``partner_kit`` must never import Dagster, dbt, Splink or Great
Expectations: the encoding half runs at partner agencies with only light dependencies.
"""
