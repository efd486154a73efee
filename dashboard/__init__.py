"""The Community Violence Data Dashboard: a static, bilingual, accessible site built from the published indicators.

``build_dashboard(warehouse_db, out_dir)`` is the whole build (the CLI's ``vpdc dashboard build`` and the Dagster
asset ``dashboard/site`` are shells over it). See :mod:`dashboard.site` and docs/adr/0010-static-dashboard.md.
"""

from dashboard.published import DashboardRefused
from dashboard.site import DashboardBuild, build_dashboard

__all__ = ["DashboardBuild", "DashboardRefused", "build_dashboard"]
