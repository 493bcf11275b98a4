"""A real collector (``sentryctl collector serve``, a separate process) over real TLS on loopback, on SQLite or
PostgreSQL, with two clients in its ledger: acme (hosts game1, game2) and rival (host r1)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from orchestrator.collector import config, process
from orchestrator.collector.tokens import token_sha256
from orchestrator.ledger import Ledger
from orchestrator.settings import Settings

PG_ENV = "SENTRY_TEST_PG_URL"
REQUIRE_PG_ENV = "SENTRY_REQUIRE_PG"
SENTRYCTL = str(Path(sys.executable).parent / "sentryctl")
START_TIMEOUT_S = 30
TIMEOUTS = {"handshake_timeout_seconds": 2, "request_timeout_seconds": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def boot_id() -> str:
    return secrets.token_hex(16)


def record(
    kind: str, host: str, boot: str, seq: int, time_: str = "2026-12-06T23:00:00.000Z", **extra: Any
) -> dict[str, Any]:
    base: dict[str, Any] = {"type": kind, "boot": boot, "seq": seq, "time": time_, "host": host, "client": "ignored"}
    if kind == "alert":
        base.update(rule="ssh-bruteforce", source="auth", ip="198.51.100.7", count=5, action="banned")
    else:
        base.update(event="interval", version="1.2.3", rules_digest="ab" * 32, interval_seconds=30, spool_records=0)
    base.update(extra)
    return base


@dataclass
class Response:
    status: int
    body: dict[str, Any]


@dataclass
class Collector:
    home: Path
    db_url: str
    port: int
    cert: Path
    tokens: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.cert))
        ctx.check_hostname = False
        return ctx

    def connect(self) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return self.context().wrap_socket(raw)

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Response:
        import http.client

        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(), timeout=15)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read()
            return Response(resp.status, json.loads(raw) if raw.startswith(b"{") else {"text": raw.decode()})
        finally:
            conn.close()

    def ingest(self, host: str, records: list[Any], token: str | None = None, client: str = "acme") -> Response:
        body = gzip.compress(json.dumps({"host": host, "records": records}).encode())
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        tok = token if token is not None else self.tokens[client]
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        return self.request("POST", "/v1/ingest", body, headers)

    def start(self) -> None:
        env = {**os.environ, "SENTRY_HOME": str(self.home), "SENTRY_DB_URL": self.db_url}
        self.proc = subprocess.Popen(
            [SENTRYCTL, "collector", "serve", "--listen", f"127.0.0.1:{self.port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"collector exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}"
                )
            try:
                if self.request("GET", "/healthz").status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("collector did not answer /healthz in time")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        process.stop(self.proc, sig)
        self.proc = None

    @property
    def inventories(self) -> Path:
        return self.home / "inventories"

    def sentryctl(self, *args: str, expect: int = 0, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run the real CLI on this collector's home, inventories and database; wide, so tables are not wrapped."""
        env = {
            **os.environ,
            "SENTRY_HOME": str(self.home),
            "SENTRY_INVENTORIES": str(self.inventories),
            "SENTRY_DB_URL": self.db_url,
            "COLUMNS": "250",
        }
        done = subprocess.run(
            [SENTRYCTL, *args], check=False, env=env, input=stdin, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
        return done

    def age(self, table: str, seconds: float, where: str = "1 = 1") -> None:
        """Move the receive time of the matching records ``seconds`` into the past (the collector's clock)."""
        when = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
        # SQLite keeps naive UTC text as SQLAlchemy writes it (the ledger's UTCDateTime); PostgreSQL an aware time.
        value: object = when.strftime("%Y-%m-%d %H:%M:%S.%f") if self.db_url.startswith("sqlite") else when
        self.sql(f"UPDATE {table} SET received_at = :t WHERE {where}", t=value)

    def sql(self, statement: str, **params: Any) -> list[Any]:
        engine = sa.create_engine(self.db_url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                result = conn.execute(sa.text(statement), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()


def pg_url() -> str:
    """The PostgreSQL to test on: skipped without one, unless SENTRY_REQUIRE_PG=1 (then the test FAILS)."""
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get(REQUIRE_PG_ENV) == "1":
            pytest.fail(f"{REQUIRE_PG_ENV}=1 but {PG_ENV} is not set")
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    return url


@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A URL to a fresh schema of its own, dropped afterwards."""
    admin = sa.create_engine(url, poolclass=NullPool)
    schema = f"collector_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield admin.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    with pg_schema(pg_url()) as url:
        yield url


@pytest.fixture
def pg_db_url() -> Iterator[str]:
    """For tests that only make sense on PostgreSQL (several collector processes on one database)."""
    with pg_schema(pg_url()) as url:
        yield url


def prepare(home: Path, db_url: str, port: int) -> Collector:
    settings = Settings(home=home, inventories=home / "inventories", db_url=db_url)
    config.init(settings, listen=f"127.0.0.1:{port}", url=None, sans=())
    conf = home / "collector" / config.CONFIG_FILE
    conf.write_text(json.dumps({**json.loads(conf.read_text()), **TIMEOUTS}))
    tokens = {"acme": secrets.token_urlsafe(24), "rival": secrets.token_urlsafe(24)}
    with Ledger.open(db_url, home, actor="tester@ci") as ledger:
        for client, hosts in (("acme", ["game1", "game2"]), ("rival", ["r1"])):
            ledger.add_client(client, "professional", {})
            ledger.sync_hosts(client, [(h, f"10.0.0.{i + 1}", 22) for i, h in enumerate(hosts)])
            ledger.register_collector_token(client, token_sha256(tokens[client]))
    return Collector(home, db_url, port, home / "collector" / config.CERT_FILE, tokens)


@pytest.fixture
def collector(db_url: str, tmp_path: Path) -> Iterator[Collector]:
    running = prepare(tmp_path / "home", db_url, free_port())
    running.start()
    try:
        yield running
    finally:
        running.stop()


Counts = Callable[[], tuple[int, int]]


@pytest.fixture
def counts(collector: Collector) -> Counts:
    def run() -> tuple[int, int]:
        alerts = collector.sql("SELECT count(*) FROM telemetry_alerts")[0][0]
        beats = collector.sql("SELECT count(*) FROM telemetry_heartbeats")[0][0]
        return int(alerts), int(beats)

    return run
