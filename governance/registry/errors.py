"""The refusal every registry action raises: its message names the field, rule or permission, for a person."""

from __future__ import annotations

__all__ = ["GovernanceError", "PermissionRefused"]


class GovernanceError(Exception):
    """An action was refused; the message names the field or rule."""


class PermissionRefused(GovernanceError):
    """The actor lacks the permission the action declares (``roles.ACTIONS``). Already audited when raised
    inside ``Registry.transaction`` (``audited`` is then True, so shells do not audit it twice)."""

    audited = False
