"""Security headers on every response, CSRF tokens on every form, sign-in rate limits.

The content security policy allows no script at all (the portal has none), styles and images from itself
only, forms posting to itself only, no framing. CSRF tokens are HMACs of the session token (or, before
sign-in, of a random pre-session cookie) under a key derived from the audit key: nothing is stored, and a
form without the token, or with another session's, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque

__all__ = ["HEADERS", "RateLimiter", "SecurityHeaders", "csrf_for", "csrf_ok"]

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",  # sign-in links carry a token in their path
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cache-control": "no-store",
}


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response (HSTS too behind TLS)."""

    def __init__(self, app, *, secure: bool):
        self.app, self.secure = app, secure

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in HEADERS]
                for k, v in HEADERS.items():
                    if k == "cache-control" and path.startswith("/static/"):
                        v = "public, max-age=3600"
                    headers.append((k.encode(), v.encode()))
                if self.secure:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_for(key: bytes, anchor: str) -> str:
    """The form token for a session (or pre-session) token."""
    return hmac.new(key, b"csrf\x1e" + anchor.encode(), hashlib.sha256).hexdigest()


def csrf_ok(key: bytes, anchor: str | None, given: object) -> bool:
    return bool(anchor) and isinstance(given, str) and hmac.compare_digest(csrf_for(key, anchor), given)


class RateLimiter:
    """At most ``limit`` events per key in any ``window`` seconds (in memory; one portal process)."""

    def __init__(self, limit: int, window: float = 60.0, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._events: dict[str, deque] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            q = self._events.setdefault(key, deque())
            while q and now - q[0] > self.window:
                q.popleft()
            if len(q) >= self.limit:
                return False
            q.append(now)
            return True
