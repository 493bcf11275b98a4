"""Analytics benchmark: the month report over a million alerts, and the portal page under concurrent users, on
SQLite and PostgreSQL side by side in one run.

    .venv/bin/python -m bench.analytics [--alerts 1000000] [--hosts 20] [--pg-url URL] [--users 20]
                                        [--requests 25] [--out DIR]

Per backend: a client's month (November 2026) of alerts and heartbeats inserted in bulk (SQLAlchemy executemany
in batches, the rows a collector would store), then ``write_report`` timed (figures in SQL, HTML, CSV, signing),
then the real collector (``sentryctl collector serve``, TLS) serving ``/portal?period=2026-11``: the first page
(it computes the figures the portal then keeps a minute) timed alone, then ``--users`` threads, each with its own
portal token and connection, ``--requests`` pages each; the p50 and p95 of their latencies.
Goals (issue 16): report <= 10 s, page p95 <= 300 ms. Writes ``analytics.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from orchestrator.analytics import parse_period
from orchestrator.collector import config
from orchestrator.collector.portal_auth import new_portal_token
from orchestrator.ledger import Ledger, canonical_json
from orchestrator.ledger.models import TelemetryAlert, TelemetryHeartbeat
from orchestrator.releases import signing
from orchestrator.reports import write_report
from orchestrator.settings import Settings

from .ingest import drop_schema, pg_schema_url

REPORT_GOAL_S = 10.0
PAGE_P95_GOAL_MS = 300.0
BATCH = 10_000
MONTH = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
SECONDS = 30 * 86400
RULES = ("ssh-bruteforce", "game-login", "web-scan", "udp-flood", "port-scan")
SEVERITIES = ("low", "medium", "high", "critical")
HEARTBEAT_EVERY_S = 600
SENTRYCTL = str(Path(sys.executable).parent / "sentryctl")


# ------------------------------------------------------------------------------------------- report (pure)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (``p`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil without floats
    return ordered[int(rank) - 1]


def summarize(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"goals": {"report_s": REPORT_GOAL_S, "page_p95_ms": PAGE_P95_GOAL_MS}, "backends": {}}
    for backend, r in sorted(results.items()):
        report_s, p95 = r.get("report_s"), r.get("page_p95_ms")
        out["backends"][backend] = {
            **r,
            "report_meets_goal": None if report_s is None else report_s <= REPORT_GOAL_S,
            "page_meets_goal": None if p95 is None else p95 <= PAGE_P95_GOAL_MS,
        }
    return out


def table(summary: Mapping[str, Any]) -> str:
    met = {True: "met", False: "MISSED", None: "-"}
    lines = [
        f"{'backend':<11} {'alerts':>9} {'insert s':>9} {'report s':>9} {'':<6} "
        f"{'page p50 ms':>11} {'p95 ms':>7} {'':<6} goals: report <= {REPORT_GOAL_S:g} s, "
        f"page p95 <= {PAGE_P95_GOAL_MS:g} ms"
    ]
    for backend, r in summary["backends"].items():
        lines.append(
            f"{backend:<11} {r['alerts']:>9} {r['insert_s']:>9.1f} {r['report_s']:>9.2f} "
            f"{met[r['report_meets_goal']]:<6} {_num(r.get('page_p50_ms')):>11} {_num(r.get('page_p95_ms')):>7} "
            f"{met[r['page_meets_goal']]:<6} ({r.get('users', 0)} users x {r.get('requests', 0)} pages, "
            f"{r.get('errors', 0)} errors; first page {_num(r.get('first_page_ms'))} ms)"
        )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


# ------------------------------------------------------------------------------------------- measuring


def alert_rows(host_names: Sequence[str], start: int, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """Alerts spread over the month; a few thousand sources, the first hundred far more often (a real skew)."""
    out = []
    for i in range(start, start + count):
        when = MONTH + dt.timedelta(seconds=rng.randrange(SECONDS))
        source = rng.randrange(100) if rng.random() < 0.5 else rng.randrange(5000)
        ip = f"203.0.{source // 250}.{source % 250 + 1}"
        rule = RULES[i % len(RULES)]
        out.append(
            {
                "client": "bench",
                "host": host_names[i % len(host_names)],
                "boot": "b" * 32,
                "seq": i,
                "host_time": when,
                "received_at": when,
                "rule": rule,
                "source": "auth",
                "ip": ip,
                "count": 5,
                "action": "banned",
                "severity": SEVERITIES[i % len(SEVERITIES)],
                "version": "1.0.0",
                "rules_version": "1",
                "ban_seconds": 3600,  # as the collector's schema keeps it on ingest
                "raw": {"type": "alert", "rule": rule, "ip": ip, "ban_seconds": 3600, "seq": i},
            }
        )
    return out


def heartbeat_rows(host: str) -> list[dict[str, Any]]:
    out = []
    for i in range(SECONDS // HEARTBEAT_EVERY_S):
        when = MONTH + dt.timedelta(seconds=i * HEARTBEAT_EVERY_S)
        counters = {"banned_v4": {"packets": i * 7, "bytes": i * 700}}
        out.append(
            {
                "client": "bench",
                "host": host,
                "boot": "c" * 32,
                "seq": i,
                "host_time": when,
                "received_at": when,
                "event": "interval",
                "interval_seconds": float(HEARTBEAT_EVERY_S),
                "bans_active": 3,
                "fw_packets": i * 7,  # as the collector's schema sums the counters on ingest
                "fw_bytes": i * 700,
                "raw": {"type": "heartbeat", "firewall": counters, "bans_active": 3},
            }
        )
    return out


def seed(ledger_url: str, home: Path, alerts: int, hosts: int) -> tuple[float, list[str]]:
    """The client and its hosts through the ledger API, then the records in bulk; (seconds inserting, hosts)."""
    names = [f"gs{i:03d}" for i in range(hosts)]
    with Ledger.open(ledger_url, home, actor="bench") as ledger:
        ledger.add_client("bench", "essentials", {})
        ledger.sync_hosts("bench", [(h, f"10.9.0.{i + 1}", 22) for i, h in enumerate(names)])
    engine = sa.create_engine(ledger_url, poolclass=NullPool)
    with engine.begin() as conn:  # the hosts joined before the month measured
        conn.execute(sa.text("UPDATE hosts SET added_at = :t"), {"t": _db_time(ledger_url, MONTH)})
    rng = random.Random(16)  # noqa: S311 - test data, not a secret
    started = time.perf_counter()
    for i in range(0, alerts, BATCH):
        bulk_insert(engine, TelemetryAlert, alert_rows(names, i, min(BATCH, alerts - i), rng))
    for name in names:
        bulk_insert(engine, TelemetryHeartbeat, heartbeat_rows(name))
    with engine.begin() as conn:  # what autovacuum or a DBA would have done to a table of this size
        conn.execute(sa.text("ANALYZE"))
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, names


def bulk_insert(engine: sa.Engine, model: type[Any], rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows in bulk, the way a loader would: COPY on PostgreSQL, one executemany on SQLite; values already in
    the stored form (UTC times as SQLite's text, the record as canonical JSON), as the ledger's types write them."""
    columns = list(rows[0])
    sqlite = engine.dialect.name == "sqlite"

    def stored(column: str, value: Any) -> Any:
        if column == "raw":
            return canonical_json(value)
        if isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else value
        return value

    values = [tuple(stored(c, r[c]) for c in columns) for r in rows]
    table = model.__tablename__
    with engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        if sqlite:
            marks = ", ".join("?" for _ in columns)
            # Table and column names are this module's own; the values are bound.
            raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)  # noqa: S608
        else:
            with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)


def _db_time(url: str, when: dt.datetime) -> object:
    return when.strftime("%Y-%m-%d %H:%M:%S.%f") if url.startswith("sqlite") else when


def time_report(ledger_url: str, home: Path) -> tuple[float, int]:
    settings = Settings(home=home, inventories=home / "inventories", db_url=ledger_url)
    with Ledger.open(ledger_url, home, actor="bench") as ledger:
        started = time.perf_counter()
        outcome = write_report(settings, ledger, "bench", parse_period("2026-11"), home / "report")
        elapsed = time.perf_counter() - started
    return elapsed, outcome.figures.alert_total()


def start_collector(ledger_url: str, home: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    settings = Settings(home=home, inventories=home / "inventories", db_url=ledger_url)
    config.init(settings, listen=f"127.0.0.1:{port}", url=None, sans=(), force=True)
    env = {**os.environ, "SENTRY_HOME": str(home), "SENTRY_DB_URL": ledger_url}
    proc = subprocess.Popen(
        [SENTRYCTL, "collector", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    cert = home / "collector" / config.CERT_FILE
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = _connection(port, cert)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port, cert
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the collector did not start")


def _connection(port: int, cert: Path) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)


def portal_load(ledger_url: str, home: Path, users: int, requests: int) -> dict[str, Any]:
    with Ledger.open(ledger_url, home, actor="bench") as ledger:
        tokens = [new_portal_token(ledger, "bench", label=f"user {i}")[0] for i in range(users)]
    proc, port, cert = start_collector(ledger_url, home)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def user(token: str) -> None:
        conn = _connection(port, cert)
        for _ in range(requests):
            started = time.perf_counter()
            conn.request("GET", "/portal?period=2026-11", headers={"Cookie": f"sentry_portal={token}"})
            resp = conn.getresponse()
            resp.read()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                errors[0] += resp.status != 200
        conn.close()

    try:
        # The first page of a (client, period) computes its figures; the next minute of pages read them (the
        # portal's figure cache). Measured apart, then the users' steady pages.
        conn = _connection(port, cert)
        started = time.perf_counter()
        conn.request("GET", "/portal?period=2026-11", headers={"Cookie": f"sentry_portal={tokens[0]}"})
        first = conn.getresponse()
        first.read()
        first_ms = (time.perf_counter() - started) * 1000
        conn.close()
        if first.status != 200:
            raise RuntimeError(f"the portal answered {first.status}")
        threads = [threading.Thread(target=user, args=(t,)) for t in tokens]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "users": users,
        "requests": requests,
        "errors": errors[0],
        "pages_per_s": round(len(latencies) / wall, 1),
        "first_page_ms": round(first_ms, 1),
        "page_p50_ms": round(percentile(latencies, 50) or 0, 1),
        "page_p95_ms": round(percentile(latencies, 95) or 0, 1),
    }


def run_backend(ledger_url: str, home: Path, args: argparse.Namespace) -> dict[str, Any]:
    home.mkdir(parents=True)
    signing.keygen(home)
    insert_s, _ = seed(ledger_url, home, args.alerts, args.hosts)
    print(f"    {args.alerts} alerts inserted in {insert_s:.1f}s", file=sys.stderr)
    report_s, counted = time_report(ledger_url, home)
    assert counted == args.alerts, (counted, args.alerts)
    print(f"    report in {report_s:.2f}s", file=sys.stderr)
    result: dict[str, Any] = {"alerts": args.alerts, "insert_s": round(insert_s, 1), "report_s": round(report_s, 2)}
    if args.users:
        result.update(portal_load(ledger_url, home, args.users, args.requests))
    return result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as tmp:
        work = Path(tmp)
        print("--> sqlite", file=sys.stderr)
        results["sqlite"] = run_backend(f"sqlite:///{work / 'sqlite' / 'ledger.db'}", work / "sqlite", args)
        if args.pg_url:
            print("--> postgresql", file=sys.stderr)
            scoped, schema = pg_schema_url(args.pg_url)
            try:
                results["postgresql"] = run_backend(scoped, work / "pg", args)
            finally:
                drop_schema(args.pg_url, schema)
    return summarize(results)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--pg-url", default=os.environ.get("SENTRY_TEST_PG_URL"))
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args(argv)
    if not 0 < args.alerts <= 5_000_000 or not 0 < args.hosts <= 250 or not 0 <= args.users <= 200:
        parser.error("--alerts 1..5000000, --hosts 1..250, --users 0..200")
    summary = measure(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "analytics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(table(summary))
    print(f"written {args.out / 'analytics.json'}")


if __name__ == "__main__":
    main()
