"""OpenID Connect single sign-on (authorization code flow with PKCE, state and nonce) through Authlib's client;
the ID token is verified with joserfc (signature against the provider's published keys, issuer, audience,
expiry, nonce). Only then does :func:`governance.identity.signin.oidc_sign_in` look up the linked account.

The configuration is passed in (the portal reads ``VPDC_OIDC_*`` when it starts, never at import time).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OIDCConfig", "OIDCError", "begin", "finish"]


class OIDCError(Exception):
    """Single sign-on failed; the message says at which step (never a token)."""


@dataclass
class OIDCConfig:
    """An identity provider: its issuer URL, this portal's client id and secret, and the redirect URI
    registered there (``<portal>/auth/oidc/callback``)."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str = "openid email"
    timeout: float = 10.0
    _metadata: dict[str, Any] | None = field(default=None, repr=False)

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once)."""
        if self._metadata is None:
            import requests

            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                resp = requests.get(url, timeout=self.timeout)
                resp.raise_for_status()
                meta = resp.json()
            except (requests.RequestException, ValueError) as exc:
                raise OIDCError(f"the identity provider's discovery document cannot be read ({type(exc).__name__})"
                                ) from None
            if str(meta.get("issuer", "")).rstrip("/") != self.issuer.rstrip("/"):
                raise OIDCError("the identity provider's discovery document names another issuer")
            self._metadata = meta
        return self._metadata

    def _client(self):
        from authlib.integrations.requests_client import OAuth2Session

        return OAuth2Session(self.client_id, self.client_secret, scope=self.scope, redirect_uri=self.redirect_uri,
                             code_challenge_method="S256")


def begin(config: OIDCConfig) -> dict[str, str]:
    """Where to send the browser, and what to keep in the (server-side) sign-in state: ``url``, ``state``,
    ``nonce``, ``verifier`` (the PKCE code verifier)."""
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    url, _ = config._client().create_authorization_url(config.metadata()["authorization_endpoint"], state=state,
                                                       nonce=nonce, code_verifier=verifier)
    return {"url": url, "state": state, "nonce": nonce, "verifier": verifier}


def finish(config: OIDCConfig, *, code: str, state: str, started: dict[str, str]) -> dict[str, Any]:
    """Exchange the code and verify the ID token; returns its claims (``iss``, ``sub``, ...).

    Raises:
        OIDCError: state mismatch, token exchange failed, or the ID token does not verify.
    """
    import hmac

    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    if not started or not isinstance(state, str) or not hmac.compare_digest(state, started.get("state", "")):
        raise OIDCError("the sign-in response does not belong to a sign-in started here (state)")
    if not isinstance(code, str) or not code or len(code) > 2000:
        raise OIDCError("the identity provider sent no authorization code")
    meta = config.metadata()
    try:
        token = config._client().fetch_token(meta["token_endpoint"], code=code, code_verifier=started["verifier"],
                                             grant_type="authorization_code", timeout=config.timeout)
    except Exception as exc:  # noqa: BLE001 - any failure of the exchange is one refusal
        raise OIDCError(f"the authorization code was not accepted ({type(exc).__name__})") from None
    id_token = token.get("id_token")
    if not id_token:
        raise OIDCError("the identity provider returned no ID token")
    try:
        import requests

        keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=config.timeout).json())
        decoded = jwt.decode(id_token, keys)
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": config.issuer.rstrip("/")},
                              aud={"essential": True, "value": config.client_id},
                              sub={"essential": True}, exp={"essential": True},
                              nonce={"essential": True, "value": started["nonce"]}).validate(decoded.claims)
    except (JoseError, ValueError, KeyError) as exc:
        raise OIDCError(f"the ID token does not verify ({type(exc).__name__})") from None
    return dict(decoded.claims)
