"""The customer portal on a real collector process over real TLS (SQLite and PostgreSQL), with figures over rows
stored through Ledger.store_batch: sign-in and its cookie, each client only its own data on every route of the
app (enumerated, so a route added later without the tenant check fails here), agent and portal tokens kept
apart, bad tokens, bad filters, revocation, rate limits."""

from __future__ import annotations

import http.client
import json
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount

from orchestrator.collector import app as collector_app
from orchestrator.collector.config import CollectorSettings
from orchestrator.collector.deps import agent_client, operator, public
from orchestrator.collector.portal_auth import FAILURES_PER_MINUTE, new_portal_token, portal_client
from orchestrator.ledger import Ledger
from tests.integration.collector.conftest import Collector, free_port, prepare, record

from .conftest import ATTACKER
from .test_figures import RIVAL_IP, seed

AUTH_DEPENDENCIES = {portal_client, agent_client, operator, public}
# What only rival's data contains: its client name, its host, the address that attacked it.
RIVAL_MARKERS = re.compile(r"rival|\br1\b|" + re.escape(RIVAL_IP))


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str

    def json(self) -> dict[str, object]:
        return dict(json.loads(self.text))


@dataclass
class Portal:
    collector: Collector
    tokens: dict[str, str]  # client -> portal token

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        cookie: str | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.collector.port, context=self.collector.context(), timeout=30
        )
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if cookie is not None:
            sent["Cookie"] = f"sentry_portal={cookie}"
        try:
            conn.request(method, path, body=body or None, headers=sent)
            resp = conn.getresponse()
            return Answer(resp.status, resp.headers, resp.read().decode("utf-8", "replace"))
        finally:
            conn.close()

    def sign_in(self, token: str) -> Answer:
        body = urlencode({"token": token}).encode()
        return self.call(
            "POST", "/portal/login", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )


@pytest.fixture
def portal(db_url: str, tmp_path: Path) -> Iterator[Portal]:
    running = prepare(tmp_path / "home", db_url, free_port())
    with Ledger.open(db_url, running.home, actor="tester@ci") as ledger:
        seed(ledger)
        tokens = {c: new_portal_token(ledger, c)[0] for c in ("acme", "rival")}
    running.start()
    try:
        yield Portal(running, tokens)
    finally:
        running.stop()


def test_sign_in_sets_a_strict_cookie_and_the_dashboard_shows_own_figures(portal: Portal) -> None:
    assert portal.call("GET", "/portal").status == 303  # no token: to the sign-in form
    answer = portal.sign_in(portal.tokens["acme"])
    assert answer.status == 303 and answer.headers["Location"] == "/portal"
    cookie = answer.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/portal"):
        assert attribute.lower() in cookie.lower(), cookie
    page = portal.call("GET", "/portal?period=2026-11", cookie=portal.tokens["acme"])
    assert page.status == 200 and ATTACKER in page.text
    assert "<svg" in page.text and 'class="bar"' in page.text
    assert not RIVAL_MARKERS.search(page.text)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    out = portal.call("POST", "/portal/logout", cookie=portal.tokens["acme"])
    assert out.status == 303 and 'sentry_portal=""' in out.headers["Set-Cookie"]


def test_figures_json_with_filters(portal: Portal) -> None:
    doc = portal.call("GET", "/portal/figures.json?period=2026-11&host=game2", token=portal.tokens["acme"]).json()
    assert doc["client"] == "acme" and doc["host"] == "game2" and doc["summary"]["alerts"] == 1  # type: ignore[index]
    bad = portal.call("GET", "/portal/figures.json?period=2099-01", token=portal.tokens["acme"])
    assert bad.status == 400 and "in the future" in bad.text
    # Another client's host and no host at all: the same 404, nothing tells them apart.
    foreign = portal.call("GET", "/portal/figures.json?period=2026-11&host=r1", token=portal.tokens["acme"])
    missing = portal.call("GET", "/portal/figures.json?period=2026-11&host=zz9", token=portal.tokens["acme"])
    assert (foreign.status, foreign.text) == (missing.status, missing.text) == (404, '{"error":"not found"}')


@pytest.mark.parametrize(
    "token", ["x", "stp_" + "A" * 43, "stp_short", "Bearer", "stp_" + secrets.token_urlsafe(32) + "x"]
)
def test_malformed_or_unknown_token_is_401_without_detail(portal: Portal, token: str) -> None:
    for answer in (
        portal.call("GET", "/portal/figures.json?period=2026-11", token=token),
        portal.call("GET", "/portal/figures.json?period=2026-11", cookie=token),
    ):
        assert (answer.status, answer.text) == (401, '{"error":"unauthorized"}')
    failed = portal.sign_in(token)
    assert failed.status == 401 and "Sign-in failed." in failed.text and "Set-Cookie" not in failed.headers


def test_agent_tokens_do_not_open_the_portal_and_portal_tokens_do_not_ingest(portal: Portal) -> None:
    agent = portal.collector.tokens["acme"]
    assert portal.call("GET", "/portal/figures.json", token=agent).status == 401
    assert portal.sign_in(agent).status == 401
    stored = portal.collector.ingest(
        "game1", [record("alert", "game1", secrets.token_hex(16), 0)], token=portal.tokens["acme"]
    )
    assert stored.status == 401


def test_revoked_token_stops_at_the_next_request(portal: Portal) -> None:
    made = portal.collector.sentryctl("client", "portal-token", "acme", "--label", "ana", "--json")
    token = json.loads(made.stdout)["token"]
    assert portal.call("GET", "/portal/figures.json?period=2026-11", cookie=token).status == 200
    listed = json.loads(portal.collector.sentryctl("client", "portal-token", "acme", "--list", "--json").stdout)
    mine = [t for t in listed if t["label"] == "ana"]
    assert len(mine) == 1 and "token" not in mine[0]
    portal.collector.sentryctl("client", "portal-token", "acme", "--revoke", "--id", str(mine[0]["id"]))
    assert portal.call("GET", "/portal/figures.json?period=2026-11", cookie=token).status == 401
    # The other token of acme still works; the changes are events in the chain.
    assert portal.call("GET", "/portal/figures.json?period=2026-11", token=portal.tokens["acme"]).status == 200
    kinds = portal.collector.sentryctl("ledger", "log", "--client", "acme", "--json").stdout
    assert "portal.token_created" in kinds and "portal.token_revoked" in kinds


def _walk(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, into included routers (FastAPI 0.165 keeps them as one ``_IncludedRouter`` each)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _walk(inner.routes)
        else:
            yield route


def _auth_dependencies(route: APIRoute) -> set[object]:
    found, todo = set(), list(route.dependant.dependencies)
    while todo:
        dep = todo.pop()
        found.add(dep.call)
        todo.extend(dep.dependencies)
    return found & AUTH_DEPENDENCIES


def test_every_route_gives_a_token_of_acme_nothing_of_rival(portal: Portal, tmp_path: Path) -> None:
    """Every route of the app, with acme's portal token (cookie and bearer), aimed at rival's host and data:
    nothing of rival comes back. Every API route declares exactly one authentication dependency."""
    c = portal.collector
    with Ledger.open(c.db_url, c.home) as ledger:
        app = collector_app.create_app(CollectorSettings(c.home, c.db_url, c.cert, c.home / "k"), ledger)
    routes: list[tuple[str, str]] = []
    for route in _walk(app.routes):
        if isinstance(route, APIRoute):
            assert len(_auth_dependencies(route)) == 1, f"{route.path} declares no authentication dependency"
            routes += [(m, route.path) for m in sorted(route.methods)]
        else:
            assert isinstance(route, Mount), f"a route of an unknown kind: {route!r}"
            routes += [("GET", route.path + "/")]
    assert {("GET", "/portal"), ("GET", "/portal/figures.json"), ("POST", "/v1/ingest")} <= set(routes)
    acme = portal.tokens["acme"]
    envelope = json.dumps({"host": "r1", "records": [record("alert", "r1", secrets.token_hex(16), 0)]}).encode()
    checked = 0
    for method, path in routes:
        target = re.sub(r"\{[^}]+\}", "r1", path)  # any path parameter: rival's host
        for query in ("", "?" + urlencode({"period": "2026-11", "host": "r1", "client": "rival"})):
            answer = portal.call(
                method,
                target + query,
                token=acme,
                cookie=acme,
                body=envelope if method == "POST" else b"",
                headers={"Content-Type": "application/json"},
            )
            assert not RIVAL_MARKERS.search(answer.text), (method, target + query, answer.status, answer.text[:300])
            checked += 1
    assert checked == 2 * len(routes)
    # The same token does see its own data: the check above would catch a leak.
    own = portal.call("GET", "/portal/figures.json?period=2026-11", token=acme)
    assert own.status == 200 and ATTACKER in own.text
    assert c.sql("SELECT count(*) FROM telemetry_alerts WHERE client = 'rival'")[0][0] == 1  # nothing ingested


def test_failed_sign_ins_are_rate_limited_per_address(portal: Portal) -> None:
    bad = "stp_" + secrets.token_urlsafe(32)
    statuses = [portal.sign_in(bad).status for _ in range(FAILURES_PER_MINUTE)]
    assert statuses == [401] * FAILURES_PER_MINUTE
    assert portal.sign_in(bad).status == 429
    # Blocked before any lookup, a valid token included, for the rest of the window.
    blocked = portal.call("GET", "/portal/figures.json", token=portal.tokens["acme"])
    assert blocked.status == 429 and blocked.headers["Retry-After"] == "60"
