"""The ground floor: where things live under ``VPDC_HOME`` and how files are written safely.

Standard library only: every zone, the partner kit included, builds on it and it imports none of them.
"""

from workspace.layout import Home, default_home

__all__ = ["Home", "default_home"]
