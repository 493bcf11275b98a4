"""The collector's ASGI application, built by :func:`create_app` so tests make their own."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from prometheus_client import make_asgi_app
from starlette.exceptions import HTTPException

from ..ledger import Ledger, LedgerError
from .config import CollectorSettings
from .deps import operator_allowed
from .metrics import Metrics
from .portal_auth import SignInNeeded
from .routes import defence, health, ingest, portal

ASGIApp = Any


def _guard_operator(inner: ASGIApp, settings: CollectorSettings) -> ASGIApp:
    """The /metrics app behind the operator token (a mounted app gets no route dependencies)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            if not operator_allowed(settings, headers.get("authorization")):
                response = JSONResponse({"error": "this route needs Sentry's operator token"}, status_code=401)
                await response(scope, receive, send)
                return
        await inner(scope, receive, send)

    return app


def create_app(settings: CollectorSettings, ledger: Ledger) -> FastAPI:
    """The app over an open ledger (the caller owns it and closes it)."""
    app = FastAPI(title="Sentry collector", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.ledger = ledger
    app.state.metrics = Metrics()
    app.include_router(ingest.router)
    app.include_router(defence.router)
    app.include_router(health.router)
    app.include_router(portal.router)
    app.mount("/metrics", _guard_operator(make_asgi_app(registry=app.state.metrics.registry), settings))

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(SignInNeeded)
    async def _sign_in(_request: Request, exc: SignInNeeded) -> RedirectResponse:
        return RedirectResponse("/portal/login", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "bad request"}, status_code=400)

    @app.exception_handler(LedgerError)
    async def _ledger_down(_request: Request, exc: LedgerError) -> JSONResponse:
        # The database is unavailable or locked too long: the shipper backs off and retries.
        return JSONResponse({"error": "storage unavailable, try later"}, status_code=503)

    return app
