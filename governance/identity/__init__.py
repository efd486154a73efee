"""Who is acting: sign-in for every role (local accounts with a second factor, OpenID Connect single sign-on,
e-mailed sign-in links), sessions of the portal and the CLI, and the registry's mode (ADR 0009).

Sign-in itself is :mod:`governance.identity.signin`, OIDC :mod:`governance.identity.oidc`, mail
:mod:`governance.identity.mail`. The rules live here and in :mod:`governance.registry.permissions`, which refuses any action whose actor is
not the signed-in person (or, in a registry created in demo mode only, the user named after ``--as``). The
portal and the CLI are shells over these functions.
"""

from governance.identity.context import (
    DEMO_AS,
    IDENTITY,
    Identity,
    acting_problem,
    registry_mode,
    require_recent_sign_in,
    set_registry_mode,
)

__all__ = ["DEMO_AS", "IDENTITY", "Identity", "acting_problem", "registry_mode", "require_recent_sign_in",
           "set_registry_mode"]
