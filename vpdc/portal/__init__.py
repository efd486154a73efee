"""The collaborative's web portal (``vpdc portal``): stewards, community reviewers, analysts, evaluators,
engineers and administrators, each signed in as themselves.

A thin shell (Starlette, server-rendered Jinja2 pages, no JavaScript) over the same library functions as the
CLI: every rule lives in :mod:`governance`. See docs/portal.md and ADR 0009.
"""

from vpdc.portal.app import create_app
from vpdc.portal.config import PortalConfig

__all__ = ["PortalConfig", "create_app"]
