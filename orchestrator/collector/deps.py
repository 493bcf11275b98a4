"""What routes depend on: the settings, the ledger, the metrics, and authentication. Every route declares its
authentication dependency, so a route without one stands out: :func:`agent_client` (a client's bearer token),
:func:`operator` (Sentry's operator token, for /metrics), :func:`~.portal_auth.portal_client` (a client's portal
token: the portal's tenant check), or :func:`public` (on purpose: /healthz says only ok or not, and the portal's
sign-in form)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from ..ledger import Ledger
from .config import CollectorSettings
from .metrics import Metrics


def get_settings(request: Request) -> CollectorSettings:
    settings: CollectorSettings = request.app.state.settings
    return settings


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def agent_client(
    ledger: Annotated[Ledger, Depends(get_ledger)],
    metrics: Annotated[Metrics, Depends(get_metrics)],
    authorization: Annotated[str | None, Header()] = None,
) -> str:
    """The client the bearer token belongs to; 401 for a missing, unknown or revoked token. The client of every
    record comes from here, never from a payload."""
    token = bearer(authorization)
    client = ledger.collector_client(token_sha256(token)) if token else None
    if client is None:
        metrics.rejects.labels("unauthorized").inc()
        raise HTTPException(401, "missing, unknown or revoked collector token", headers={"WWW-Authenticate": "Bearer"})
    return client


def operator_allowed(settings: CollectorSettings, authorization: str | None) -> bool:
    token = bearer(authorization)
    expected = settings.operator_token_sha256
    return bool(token and expected and hmac.compare_digest(token_sha256(token), expected))


def operator(
    settings: Annotated[CollectorSettings, Depends(get_settings)],
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    if not operator_allowed(settings, authorization):
        raise HTTPException(401, "this route needs Sentry's operator token", headers={"WWW-Authenticate": "Bearer"})


def public() -> None:
    """Declared by routes that are open on purpose."""
