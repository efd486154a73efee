"""The ground floor: where things live under ``VPDC_HOME`` and how files are written safely.

Standard library only: every zone, the partner kit included, builds on it and it imports none of them.
"""

from workspace.layout import Home, PartnerSite, default_home, is_period

__all__ = ["Home", "PartnerSite", "default_home", "is_period"]
