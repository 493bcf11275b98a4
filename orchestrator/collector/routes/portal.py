"""The customer portal: one client's figures, live, read-only (docs/analytics.md).

``GET /portal/login`` and ``POST /portal/login`` sign in with a portal token (a form; the answer sets the cookie,
see :mod:`..portal_auth`), ``POST /portal/logout`` signs out, ``GET /portal`` is the dashboard (the report's page
with a filter form) and ``GET /portal/figures.json`` the same figures as JSON, both filtered by ``period`` (as
``sentryctl report`` takes it; default: this month so far) and ``host`` (one of the client's hosts); figures are
at most a minute old (:mod:`..figure_cache`).

Every data route declares :func:`~..portal_auth.portal_client` and reads figures for the client it returns. A host
that is not the client's gets the same 404 whether it exists elsewhere or not: nothing tells a host of another
client from no host at all.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ...analytics import AnalyticsError, Figures, PeriodError, figures, parse_period
from ...analytics.render import PortalView, figures_html, login_html
from ...ledger import Ledger
from ..deps import get_ledger, public
from ..figure_cache import TTLCache
from ..portal_auth import COOKIE, COOKIE_MAX_AGE, TOKEN_RE, address, check_token, limits, portal_client

router = APIRouter(prefix="/portal", tags=["portal"])
MAX_FORM_BYTES = 4096
# Pages carry their own CSS and SVG and nothing else: no script, no frame, no request to another origin.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


@dataclass
class Entry:
    """What the cache keeps per (client, period, host): the figures, and the page and JSON once rendered (a
    page costs more to render than to send; two requests rendering the same entry at once is harmless)."""

    figures: Figures
    html: str | None = None
    body: bytes | None = None


def _cache(request: Request) -> TTLCache[Entry]:
    found: TTLCache[Entry] | None = getattr(request.app.state, "portal_figures", None)
    if found is None:
        found = request.app.state.portal_figures = TTLCache()
    return found


def _filters(cache: TTLCache[Entry], ledger: Ledger, client: str, period: str | None, host: str | None) -> Entry:
    """Figures of ``client`` for the request's filters, at most a minute old (:mod:`..figure_cache`);
    PeriodError (400) or 404 for a host not the client's."""
    label = period or _dt.datetime.now(_dt.UTC).strftime("%Y-%m")
    parsed = parse_period(label)
    try:
        return cache.get(
            (client, parsed.label, host or None), lambda: Entry(figures(ledger, client, parsed, host or None))
        )
    except PeriodError:
        raise
    except AnalyticsError:
        raise NotFound from None


class NotFound(Exception):
    """A host that is not one of the client's: answered 404 with no detail."""


def _refusal(exc: Exception, as_json: bool) -> Response:
    if isinstance(exc, PeriodError):
        message, status = exc.message, 400
    else:
        message, status = "not found", 404
    if as_json:
        return JSONResponse({"error": message}, status_code=status, headers=HEADERS)
    return _html(login_html(message=message, form=False), status)


@router.get("/login", dependencies=[Depends(public)])
async def login_form() -> HTMLResponse:
    return _html(login_html())


@router.post("/login", dependencies=[Depends(public)])
async def login(request: Request, ledger: Annotated[Ledger, Depends(get_ledger)]) -> Response:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return _html(login_html(message="Sign-in failed."), 401)
    token = parse_qs(body.decode("latin-1")).get("token", [""])[0].strip()
    lim = limits(request)
    if lim.failures.blocked(address(request)):
        return _html(login_html(message="Too many attempts; wait a minute."), 429)
    try:
        await run_in_threadpool(check_token, request, ledger, token)
    except Exception as exc:  # 401 or 429 from the check: the same page, no detail on why
        status = getattr(exc, "status_code", 401)
        message = "Too many attempts; wait a minute." if status == 429 else "Sign-in failed."
        return _html(login_html(message=message), status)
    response = RedirectResponse("/portal", status_code=303, headers=HEADERS)
    assert TOKEN_RE.match(token)
    response.set_cookie(
        COOKIE, token, max_age=COOKIE_MAX_AGE, path="/portal", secure=True, httponly=True, samesite="strict"
    )
    return response


@router.post("/logout", dependencies=[Depends(public)])
async def logout() -> Response:
    response = RedirectResponse("/portal/login", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path="/portal", secure=True, httponly=True, samesite="strict")
    return response


@router.get("")
async def dashboard(
    request: Request,
    client: Annotated[str, Depends(portal_client)],
    ledger: Annotated[Ledger, Depends(get_ledger)],
    period: str | None = None,
    host: str | None = None,
) -> Response:
    try:
        entry = await run_in_threadpool(_filters, _cache(request), ledger, client, period, host)
    except (PeriodError, NotFound) as exc:
        return _refusal(exc, as_json=False)
    if entry.html is None:
        f = entry.figures
        hosts = [h.name for h in await run_in_threadpool(ledger.hosts, client)]
        entry.html = figures_html(f, portal=PortalView(hosts=hosts, period=f.period.label, host=f.host))
    return _html(entry.html)


@router.get("/figures.json")
async def figures_json(
    request: Request,
    client: Annotated[str, Depends(portal_client)],
    ledger: Annotated[Ledger, Depends(get_ledger)],
    period: str | None = None,
    host: str | None = None,
) -> Response:
    try:
        entry = await run_in_threadpool(_filters, _cache(request), ledger, client, period, host)
    except (PeriodError, NotFound) as exc:
        return _refusal(exc, as_json=True)
    if entry.body is None:
        entry.body = json.dumps(entry.figures.to_json(), separators=(",", ":")).encode()
    return Response(entry.body, media_type="application/json", headers=HEADERS)
