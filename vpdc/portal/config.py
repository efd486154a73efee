"""The portal's configuration: built once when it starts (``from_env``), passed in, never read at import time."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from governance.identity.mail import Mailer
from governance.identity.oidc import OIDCConfig

__all__ = ["PortalConfig"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PortalConfig:
    """Where the portal's data is (``home``: VPDC_HOME), the URL people reach it at (``base_url``: links in
    e-mails, the OIDC redirect, Secure cookies when https), single sign-on (``oidc``), mail (``mailer``), the
    Dagster UI's URL for engineers, and the clock (tests pass their own)."""

    home: Path
    base_url: str = "http://127.0.0.1:8400"
    registry_url: str | None = None
    oidc: OIDCConfig | None = None
    oidc_label: str = "your organisation"
    mailer: Mailer | None = None
    dagster_url: str = "http://127.0.0.1:3000"
    clock: Callable[[], datetime] = field(default=_utcnow)
    #: sign-in attempts (password, link, OIDC) per client address per minute, before a 429 page
    sign_in_rate: int = 30

    @property
    def secure(self) -> bool:
        return self.base_url.startswith("https://")

    @classmethod
    def from_env(cls, home: Path, *, host: str, port: int) -> "PortalConfig":
        """``VPDC_PORTAL_URL`` (default http://host:port), ``VPDC_OIDC_ISSUER``/``_CLIENT_ID``/``_CLIENT_SECRET``
        (single sign-on, when all three are set), ``VPDC_SMTP_HOST``/``_PORT``/``_FROM``/``_STARTTLS``/``_USER``/
        ``_PASSWORD`` (mail), ``VPDC_DAGSTER_URL``."""
        env = os.environ
        base = env.get("VPDC_PORTAL_URL") or f"http://{host}:{port}"
        oidc = None
        if env.get("VPDC_OIDC_ISSUER") and env.get("VPDC_OIDC_CLIENT_ID") and env.get("VPDC_OIDC_CLIENT_SECRET"):
            oidc = OIDCConfig(env["VPDC_OIDC_ISSUER"], env["VPDC_OIDC_CLIENT_ID"], env["VPDC_OIDC_CLIENT_SECRET"],
                              base.rstrip("/") + "/auth/oidc/callback")
        mailer = None
        if env.get("VPDC_SMTP_HOST"):
            mailer = Mailer(env["VPDC_SMTP_HOST"], int(env.get("VPDC_SMTP_PORT", "25")),
                            env.get("VPDC_SMTP_FROM", "vpdc-portal@localhost"), env.get("VPDC_SMTP_STARTTLS") == "1",
                            env.get("VPDC_SMTP_USER", ""), env.get("VPDC_SMTP_PASSWORD", ""))
        return cls(Path(home), base, env.get("VPDC_REGISTRY_URL"), oidc, env.get("VPDC_OIDC_LABEL", "your organisation"),
                   mailer, env.get("VPDC_DAGSTER_URL", "http://127.0.0.1:3000"))
