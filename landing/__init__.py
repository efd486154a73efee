"""The landing zone: envelopes are verified, validated and split into the linkage and analytics zones.

Plain, typed functions; the Dagster assets in ``orchestration/defs/ingest`` are a thin shell over them.
"""
