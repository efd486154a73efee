"""The warehouse's own settings, kept in ``VPDC_HOME/settings.json`` (JSON; standard library only).

Today: which linkage-secret versions the landing zone accepts. During a rotation both the old and the new
version are accepted (the transition); retiring the old one ends it (ADR 0005).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from workspace.files import atomic_write
from workspace.layout import Home

__all__ = ["SettingsError", "WarehouseSettings", "load_settings", "save_settings"]

_VERSION = re.compile(r"^v[1-9][0-9]{0,5}$")


class SettingsError(ValueError):
    """The settings file or a requested change is invalid; the message names the field."""


@dataclass(frozen=True)
class WarehouseSettings:
    accepted_linkage_versions: tuple[str, ...] = ("v1",)

    def __post_init__(self) -> None:
        versions = tuple(self.accepted_linkage_versions)
        if not versions or any(not isinstance(v, str) or not _VERSION.match(v) for v in versions):
            raise SettingsError("accepted_linkage_versions: a non-empty list of versions like v1, v2")
        object.__setattr__(self, "accepted_linkage_versions",
                           tuple(sorted(set(versions), key=lambda v: int(v[1:]))))

    def accept(self, version: str) -> "WarehouseSettings":
        return WarehouseSettings((*self.accepted_linkage_versions, version))

    def retire(self, version: str) -> "WarehouseSettings":
        rest = tuple(v for v in self.accepted_linkage_versions if v != version)
        if version not in self.accepted_linkage_versions:
            raise SettingsError(f"{version[:20]} is not an accepted version ({', '.join(self.accepted_linkage_versions)})")
        if not rest:
            raise SettingsError(f"{version} is the only accepted version: accept its successor first")
        return WarehouseSettings(rest)


def _path(home: Home) -> Path:
    return home.root / "settings.json"


def load_settings(home: Home) -> WarehouseSettings:
    """The settings of ``home`` (defaults when the file does not exist).

    Raises:
        SettingsError: the file is not valid JSON or holds an invalid value.
    """
    path = _path(home)
    if not path.is_file():
        return WarehouseSettings()
    try:
        raw = json.loads(path.read_text())
        return WarehouseSettings(tuple(raw.get("accepted_linkage_versions", ("v1",))))
    except (ValueError, AttributeError, TypeError) as exc:
        raise SettingsError(f"{path}: {exc}") from None


def save_settings(home: Home, settings: WarehouseSettings) -> Path:
    data = asdict(settings) | {"accepted_linkage_versions": list(settings.accepted_linkage_versions)}
    return atomic_write(_path(home), json.dumps(data, indent=2) + "\n")
