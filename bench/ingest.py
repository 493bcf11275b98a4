"""Ingest benchmark: records/s through the real collector over TLS against the floor of inserting the same rows
directly with SQLAlchemy in batches, on SQLite and PostgreSQL side by side in one run; then the collector's CPU
and memory with simulated shippers on loopback (bounded in count and time).

    .venv/bin/python -m bench.ingest [--records 20000] [--pg-url URL] [--shippers 50] [--seconds 20] [--out DIR]

Prints the ratios and writes them as JSON (``ingest.json``). Goal (issue 13): collector >= half the floor. Each
phase also counts lost and duplicated records: the database's rows for the run's boots against what was sent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import http.client
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from orchestrator.collector import config
from orchestrator.collector.tokens import token_sha256
from orchestrator.ledger import Ledger
from orchestrator.ledger.models import TelemetryAlert
from orchestrator.settings import Settings

GOAL = 0.5
BATCH = 500
SENTRYCTL = str(Path(sys.executable).parent / "sentryctl")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------- report (pure)


def report(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Ratios collector / floor per backend, checked against the goal."""
    out: dict[str, Any] = {"goal_ratio": GOAL, "backends": {}}
    for backend, r in sorted(results.items()):
        floor, via = r.get("floor_rps"), r.get("collector_rps")
        ratio = via / floor if floor and via is not None and floor > 0 else None
        out["backends"][backend] = {
            **r,
            "ratio": None if ratio is None else round(ratio, 3),
            "meets_goal": None if ratio is None else ratio >= GOAL,
        }
    return out


def table(summary: Mapping[str, Any]) -> str:
    lines = [f"{'backend':<11} {'floor rec/s':>12} {'collector rec/s':>16} {'ratio':>6}  goal >= {GOAL}"]
    for backend, r in summary["backends"].items():
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        met = {True: "met", False: "MISSED", None: "-"}[r["meets_goal"]]
        lines.append(f"{backend:<11} {r['floor_rps']:>12.0f} {r.get('collector_rps') or 0:>16.0f} {ratio:>6}  {met}")
        if r.get("records_tally"):
            lines.append(f"{'':<11} throughput phase: {tally_line(r['records_tally'])}")
        load = r.get("load")
        if load:
            lines.append(
                f"{'':<11} {load['shippers']} shippers x {load['seconds']} s: {load['records_per_s']:.0f} rec/s, "
                f"collector CPU {load['cpu_percent']:.0f}% of a core, RSS {load['rss_mb']:.0f} MB "
                f"(peak {load['peak_rss_mb']:.0f} MB)"
            )
            if load.get("records"):
                lines.append(f"{'':<11} shippers phase: {tally_line(load['records'])}")
            for failure in load.get("failures") or ():
                lines.append(f"{'':<11} shipper failed: {failure}")
    return "\n".join(lines)


def tally_line(t: Mapping[str, int]) -> str:
    flag = "" if t["lost"] == 0 and t["duplicated"] == 0 else "  <-- NOT exactly once"
    return (
        f"sent {t['sent']}, stored {t['stored']}, acknowledged {t['acknowledged']}, "
        f"lost {t['lost']}, duplicated {t['duplicated']}{flag}"
    )


# ------------------------------------------------------------------------------------------- measuring


def rows(client: str, host: str, boot: str, start: int, count: int) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    raw = {"type": "alert", "rule": "ssh-bruteforce", "ip": "198.51.100.7", "count": 5, "action": "banned"}
    return [
        {
            "client": client,
            "host": host,
            "boot": boot,
            "seq": i,
            "host_time": now,
            "received_at": now,
            "rule": "ssh-bruteforce",
            "source": "auth",
            "ip": "198.51.100.7",
            "count": 5,
            "action": "banned",
            "severity": "medium",
            "version": "1.0.0",
            "rules_version": "1",
            "raw": {**raw, "seq": i},
        }
        for i in range(start, start + count)
    ]


def wire_records(host: str, boot: str, start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "alert",
            "boot": boot,
            "seq": i,
            "time": "2026-12-06T23:00:00.000Z",
            "host": host,
            "rule": "ssh-bruteforce",
            "source": "auth",
            "ip": "198.51.100.7",
            "count": 5,
            "action": "banned",
            "version": "1.0.0",
            "rules_version": "1",
        }
        for i in range(start, start + count)
    ]


def floor(ledger_url: str, home: Path, records: int) -> float:
    with Ledger.open(ledger_url, home):
        pass
    engine = sa.create_engine(ledger_url, poolclass=NullPool)
    boot = secrets.token_hex(16)
    batches = [rows("floor", "h", boot, i, min(BATCH, records - i)) for i in range(0, records, BATCH)]
    started = time.perf_counter()
    for batch in batches:
        with engine.begin() as conn:
            conn.execute(sa.insert(TelemetryAlert), batch)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return records / elapsed


class Target:
    def __init__(self, port: int, cert: Path, token: str) -> None:
        self.port = port
        self.token = token
        self.ctx = ssl.create_default_context(cafile=str(cert))
        self.ctx.check_hostname = False

    def connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)

    def post(self, conn: http.client.HTTPSConnection, host: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        body = gzip.compress(json.dumps({"host": host, "records": records}).encode(), compresslevel=1)
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": f"Bearer {self.token}",
        }
        conn.request("POST", "/v1/ingest", body=body, headers=headers)
        resp = conn.getresponse()
        data = json.loads(resp.read())
        if resp.status != 200:
            raise RuntimeError(f"collector answered {resp.status}: {data}")
        return dict(data)


def start_collector(ledger_url: str, home: Path, hosts: Sequence[str]) -> tuple[subprocess.Popen[bytes], Target]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    settings = Settings(home=home, inventories=home / "inventories", db_url=ledger_url)
    config.init(settings, listen=f"127.0.0.1:{port}", url=None, sans=(), force=True)
    token = secrets.token_urlsafe(24)
    with Ledger.open(ledger_url, home, actor="bench") as ledger:
        ledger.add_client("bench", "professional", {})
        ledger.sync_hosts("bench", [(h, f"10.9.{i // 250}.{i % 250 + 1}", 22) for i, h in enumerate(hosts)])
        ledger.register_collector_token("bench", token_sha256(token))
    env = {**os.environ, "SENTRY_HOME": str(home), "SENTRY_DB_URL": ledger_url}
    proc = subprocess.Popen(
        [SENTRYCTL, "collector", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    target = Target(port, home / "collector" / config.CERT_FILE, token)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = target.connection()
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, target
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the collector did not start")


def through_collector(target: Target, records: int, workers: int = 4) -> tuple[float, str, int]:
    """(records/s, the boot the records carry, how many the collector acknowledged as newly stored)."""
    boot = secrets.token_hex(16)
    chunks = [(i, min(BATCH, records - i)) for i in range(0, records, BATCH)]
    payloads = [wire_records("h0", boot, i, n) for i, n in chunks]
    lock = threading.Lock()
    acknowledged = [0]

    def work() -> None:
        conn = target.connection()
        while True:
            with lock:
                if not payloads:
                    break
                batch = payloads.pop()
            answer = target.post(conn, "h0", batch)
            with lock:
                acknowledged[0] += int(answer["stored"])
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return records / (time.perf_counter() - started), boot, acknowledged[0]


def tally(ledger_url: str, sent: Mapping[str, int], acknowledged: int) -> dict[str, int]:
    """Lost and duplicated records: what the database holds for these boots against what was sent (each boot's
    records are numbered 0..sent-1, so the distinct keys are what arrived)."""
    engine = sa.create_engine(ledger_url, poolclass=NullPool)
    stored = distinct = 0
    with engine.connect() as conn:
        for boot, count in sent.items():
            n, d = conn.execute(
                sa.text("SELECT count(*), count(DISTINCT seq) FROM telemetry_alerts WHERE boot = :b AND seq < :n"),
                {"b": boot, "n": count},
            ).one()
            stored, distinct = stored + int(n), distinct + int(d)
    engine.dispose()
    total = sum(sent.values())
    return {
        "sent": total,
        "stored": stored,
        "acknowledged": acknowledged,
        "lost": total - distinct,
        "duplicated": stored - distinct,
    }


def proc_stats(pid: int) -> tuple[float, float, float]:
    """(CPU seconds, RSS MB, peak RSS MB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return cpu, int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def shippers_load(
    target: Target, ledger_url: str, pid: int, shippers: int, seconds: float, per_batch: int = 20
) -> dict[str, Any]:
    """``shippers`` threads, each one host with its own kept-alive connection, one batch per second."""
    stop = time.monotonic() + seconds
    sent = [0] * shippers
    boots = [secrets.token_hex(16) for _ in range(shippers)]
    acknowledged = [0] * shippers
    failures: list[str] = []

    def ship(n: int) -> None:
        conn = target.connection()
        try:
            while time.monotonic() < stop:
                tick = time.monotonic()
                batch = wire_records(f"h{n}", boots[n], sent[n], per_batch)
                acknowledged[n] += int(target.post(conn, f"h{n}", batch)["stored"])
                sent[n] += per_batch
                time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
        except (OSError, RuntimeError, ValueError) as exc:
            failures.append(f"h{n}: {exc}")  # counted: its unsent records are not "sent", lost ones show below
        finally:
            conn.close()

    cpu0, _, _ = proc_stats(pid)
    started = time.perf_counter()
    threads = [threading.Thread(target=ship, args=(n,)) for n in range(shippers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    wall = time.perf_counter() - started
    cpu1, rss, peak = proc_stats(pid)
    return {
        "shippers": shippers,
        "seconds": seconds,
        "records_per_s": round(sum(sent) / wall, 1),
        "cpu_percent": round(100 * (cpu1 - cpu0) / wall, 1),
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
        "records": tally(ledger_url, dict(zip(boots, sent, strict=True)), sum(acknowledged)),
        "failures": failures,
    }


def run_backend(ledger_url: str, work: Path, records: int, shippers: int, seconds: float) -> dict[str, Any]:
    floor_rps = floor(ledger_url, work / "floor-home", records)
    engine = sa.create_engine(ledger_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sa.delete(TelemetryAlert))
    engine.dispose()
    proc, target = start_collector(ledger_url, work / "home", [f"h{i}" for i in range(max(shippers, 1))])
    try:
        collector_rps, boot, acknowledged = through_collector(target, records)
        throughput_records = tally(ledger_url, {boot: records}, acknowledged)
        load = shippers_load(target, ledger_url, proc.pid, shippers, seconds) if shippers else None
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return {
        "records": records,
        "floor_rps": round(floor_rps, 1),
        "collector_rps": round(collector_rps, 1),
        "records_tally": throughput_records,
        "load": load,
    }


def pg_schema_url(url: str) -> tuple[str, str]:
    schema = f"bench_ingest_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    scoped = admin.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    admin.dispose()
    return scoped, schema


def drop_schema(url: str, schema: str) -> None:
    admin = sa.create_engine(url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--pg-url", default=os.environ.get("SENTRY_TEST_PG_URL"))
    parser.add_argument("--shippers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 0 < args.records <= 1_000_000 or not 0 <= args.shippers <= 200 or not 0 < args.seconds <= 300:
        parser.error("--records 1..1000000, --shippers 0..200, --seconds up to 300")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Both backends (PostgreSQL when a URL is given), the summary :func:`report` makes of them."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        print("--> sqlite", file=sys.stderr)
        results["sqlite"] = run_backend(
            f"sqlite:///{work / 'sqlite' / 'ledger.db'}", work / "sqlite", args.records, args.shippers, args.seconds
        )
        if args.pg_url:
            print("--> postgresql", file=sys.stderr)
            scoped, schema = pg_schema_url(args.pg_url)
            try:
                results["postgresql"] = run_backend(scoped, work / "pg", args.records, args.shippers, args.seconds)
            finally:
                drop_schema(args.pg_url, schema)
    return report(results)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    summary = measure(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(table(summary))
    print(f"written {args.out / 'ingest.json'}")


if __name__ == "__main__":
    main()
