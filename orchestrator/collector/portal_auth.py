"""The customer portal's authentication: per-client read-only tokens, the sign-in cookie, and the rate limits.

A portal token (``stp_`` + 43 url-safe characters) is shown once when made (``sentryctl client portal-token``);
the ledger keeps its sha256. Signing in posts the token in a form; the answer sets it as a cookie that is
HttpOnly (no script reads it), Secure (sent over TLS only) and SameSite=Strict (no other site can make the browser
send it, which is the portal's CSRF defence), scoped to ``/portal``. The cookie holds the token itself rather than
a server-side session: every request looks its hash up in the ledger, so a revoked token stops working on the
next request, there is no session store to lose on restart, and several collector processes agree. Scripts may send
the token as ``Authorization: Bearer`` instead.

:func:`portal_client` is the one tenant check: every portal route declares it, and every figure is read for the
client it returns, never for a client named in a request. Agent (collector) tokens are another table and never
open the portal; portal tokens never ingest.

Rate limits are in-process fixed windows (the collector is one process; several processes would each count on
their own, so the limits are per process): failed sign-ins and bad tokens per client address, and requests per
token.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from ..ledger import Ledger
from ..ledger.portal import PortalTokenRecord
from .deps import bearer, get_ledger, token_sha256

COOKIE = "sentry_portal"
COOKIE_MAX_AGE = 8 * 3600
TOKEN_PREFIX = "stp_"  # noqa: S105 - a prefix, not a secret
TOKEN_RE = re.compile(r"^stp_[A-Za-z0-9_-]{43}\Z")
FAILURES_PER_MINUTE = 10  # bad sign-ins and bad tokens, per client address
REQUESTS_PER_MINUTE = 600  # per token: a person clicking, or a script polling every few seconds


def new_portal_token(ledger: Ledger, client: str, *, label: str | None = None) -> tuple[str, PortalTokenRecord]:
    """A new token for ``client``: the token (to show once) and its ledger record (hash only)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, ledger.add_portal_token(client, token_sha256(token), label=label)


class RateLimiter:
    """At most ``limit`` hits per key per ``window`` seconds; thread-safe; memory bounded by ``max_keys``."""

    def __init__(
        self, limit: int, window: float = 60.0, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.max_keys, self.clock = limit, window, max_keys, clock
        self._hits: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def _current(self, key: str, now: float) -> tuple[float, int]:
        start, count = self._hits.get(key, (now, 0))
        return (now, 0) if now - start >= self.window else (start, count)

    def blocked(self, key: str) -> bool:
        with self._lock:
            return self._current(key, self.clock())[1] >= self.limit

    def hit(self, key: str) -> bool:
        """Count one hit; False when the key is over its limit (the hit is then refused)."""
        with self._lock:
            now = self.clock()
            if len(self._hits) >= self.max_keys:  # drop the expired windows first, then the oldest
                self._hits = {k: v for k, v in self._hits.items() if now - v[0] < self.window}
                while len(self._hits) >= self.max_keys:
                    self._hits.pop(next(iter(self._hits)))
            start, count = self._current(key, now)
            if count >= self.limit:
                return False
            self._hits[key] = (start, count + 1)
            return True


@dataclass
class PortalLimits:
    failures: RateLimiter
    requests: RateLimiter


def limits(request: Request) -> PortalLimits:
    found: PortalLimits | None = getattr(request.app.state, "portal_limits", None)
    if found is None:
        found = PortalLimits(RateLimiter(FAILURES_PER_MINUTE), RateLimiter(REQUESTS_PER_MINUTE))
        request.app.state.portal_limits = found
    return found


def address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


TOO_MANY = HTTPException(429, "too many requests, try again in a minute", headers={"Retry-After": "60"})
UNAUTHORIZED = HTTPException(401, "unauthorized")


def check_token(request: Request, ledger: Ledger, token: str | None) -> str:
    """The client of a portal token, counting against the rate limits; 401 (no detail) or 429 otherwise."""
    lim = limits(request)
    peer = address(request)
    if lim.failures.blocked(peer):
        raise TOO_MANY
    client = ledger.portal_client(token_sha256(token)) if token and TOKEN_RE.match(token) else None
    if client is None:
        lim.failures.hit(peer)
        raise UNAUTHORIZED
    if not lim.requests.hit(token_sha256(token or "")):
        raise TOO_MANY
    return client


class SignInNeeded(Exception):
    """Raised when a browser opens a portal page without any token: it is sent to the sign-in form."""


def portal_client(
    request: Request,
    ledger: Annotated[Ledger, Depends(get_ledger)],
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    """The client whose portal token the request carries (cookie or bearer). The portal's tenant check."""
    token = request.cookies.get(COOKIE) or bearer(authorization)
    if token is None and request.method == "GET" and request.url.path == "/portal":
        raise SignInNeeded
    return check_token(request, ledger, token)
