"""Dagster code location: a thin shell over ``landing``, ``linkage`` and ``governance``."""
