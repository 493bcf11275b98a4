"""Telemetry end to end on a real lab host, side by side in one run:

- latency from a log line on the host to the stored alert (the collector's receive time minus the controller's
  clock just before the line was written over SSH, so SSH's own latency counts against us): p50 and p95,
  goal p95 <= ship interval + 2 s;
- the time from the host going dark (its agent frozen with SIGSTOP: no stop heartbeat, nothing) until
  ``fleet status`` says silent, goal <= 3 heartbeat intervals + 5 s.

    .venv/bin/python -m bench.telemetry [--alerts 40] [--interval 5] [--subnet CIDR] [--out DIR]   # as root
    .venv/bin/python -m bench.telemetry --with-ingest [--pg-url URL] ...   # bench.ingest first, one report of both

One lab host (lab ``bt``) provisioned by ``sentryctl``'s own code with the collector wired by provisioning,
the collector (``sentryctl collector serve``) on the lab's bridge address, all in a temporary state folder
removed at the end. The heartbeat interval is shortened through the inventory (``sentry_tier_overrides``).
Writes ``telemetry.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import ingest
from orchestrator import clients, fleet, pins, provision
from orchestrator.collector import config, process
from orchestrator.lab import net
from orchestrator.lab.manager import Lab
from orchestrator.ledger import Ledger
from orchestrator.settings import Settings

PORT = 8443
GAME_LOG = "/var/log/sentry-game/login.log"
SENTRYCTL = str(Path(sys.executable).parent / "sentryctl")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def wait_for(what: str, predicate: Any, timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def ssh(lab: Lab, host: Any, command: str) -> str:
    proc = subprocess.run([*lab.ssh_argv(host), command], capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout


def alert_received(settings: Settings, ip: str) -> dt.datetime | None:
    with Ledger.open(settings.db_url, settings.home) as ledger, ledger._engine.connect() as conn:
        row = conn.execute(sa.text("SELECT received_at FROM telemetry_alerts WHERE ip = :ip"), {"ip": ip}).first()
    if row is None:
        return None
    value: dt.datetime | str = row[0]
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def host_state(settings: Settings, client: str, host: str) -> str:
    with Ledger.open(settings.db_url, settings.home) as ledger:
        return next(s.state for s in fleet.status(ledger, client, inventories=settings.inventories) if s.host == host)


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-telemetry-"))
    settings = Settings.from_env(home=root / "home", inventories=root / "inventories")
    lab = Lab(settings, "bt")
    collector: subprocess.Popen[bytes] | None = None
    try:
        state = lab.up(1, lambda m: None, subnet=args.subnet)
        host = next(iter(state.hosts.values()))
        address = str(net.gateway(net.parse_subnet(state.subnet)))
        config.init(settings, listen=f"{address}:{PORT}", url=None, sans=[], force=True)
        spec = clients.build_spec(
            name="bench", tier="professional", hosts=[f"{host.name}={host.address}"], mgmt_networks=[state.subnet],
            key_file=str(lab.key), game_ports=["7777"],
        )  # fmt: skip
        with Ledger.open(settings.db_url, settings.home) as ledger:
            inv = clients.create(settings, spec, ledger)
            pins.apply(inv, pins.scan(inv, inv.hosts), ledger)
            group_vars = inv.path / "group_vars" / "all.yml"
            group_vars.write_text(
                group_vars.read_text() + f"sentry_tier_overrides:\n  heartbeat_interval_seconds: {args.interval}\n"
            )
            result = provision.provision(settings, "bench", ledger)
        if not result.ok:
            raise RuntimeError("provisioning the bench host failed")
        env = {**os.environ, "SENTRY_HOME": str(settings.home), "SENTRY_INVENTORIES": str(settings.inventories)}
        collector = subprocess.Popen([SENTRYCTL, "collector", "serve"], env=env, stderr=subprocess.DEVNULL)
        wait_for("the host online", lambda: host_state(settings, "bench", host.name) == "online", 60, 0.2)
        ship_interval = 2.0  # sentry_agent_ship_interval_seconds's default
        latencies = []
        for i in range(args.alerts):
            ip = f"203.0.113.{100 + i}"
            burst = "".join(f"LOGIN FAILED user=u{n} ip={ip}\\n" for n in range(6))  # professional: threshold 6
            started = dt.datetime.now(dt.UTC)
            ssh(lab, host, f"printf '{burst}' >> {GAME_LOG}")
            received = wait_for(f"the alert for {ip}", lambda ip=ip: alert_received(settings, ip), 30)
            latencies.append((received - started).total_seconds())
        ssh(lab, host, "systemctl kill --signal=SIGSTOP sentry-agent")
        dark = time.monotonic()
        wait_for("fleet status to say silent", lambda: host_state(settings, "bench", host.name) == "silent", 600, 0.2)
        silent_after = time.monotonic() - dark
        ssh(lab, host, "systemctl kill --signal=SIGCONT sentry-agent")
        p95 = percentile(latencies, 95)
        return {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "alerts": args.alerts,
            "latency_seconds": {"p50": round(statistics.median(latencies), 3), "p95": round(p95, 3),
                                "max": round(max(latencies), 3), "samples": [round(x, 3) for x in latencies]},
            "latency_goal_seconds": ship_interval + 2,
            "latency_goal_met": p95 <= ship_interval + 2,
            "heartbeat_interval_seconds": args.interval,
            "dark_to_silent_seconds": round(silent_after, 2),
            "silent_goal_seconds": 3 * args.interval + 5,
            "silent_goal_met": silent_after <= 3 * args.interval + 5,
        }  # fmt: skip
    finally:
        process.stop(collector)  # SIGTERM, then killed past its grace time
        lab.down(lambda m: None)
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.telemetry", description=__doc__.splitlines()[0])
    # 40: with 10 samples the nearest-rank p95 is the maximum; with 40 it is the 38th of 40.
    parser.add_argument("--alerts", type=int, default=40, help="latency samples (one alert each; 1..150)")
    parser.add_argument("--interval", type=int, default=5, help="heartbeat interval of the bench host, seconds")
    parser.add_argument("--subnet", default=os.environ.get("SENTRY_TEST_SUBNET"), help="the lab's /24")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--with-ingest", action="store_true", help="first run bench.ingest (its options below), one report of both"
    )
    ingest.add_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.alerts <= 150:
        parser.error("--alerts 1..150 (one test address each, 203.0.113.100 and up)")
    ingest.check_arguments(parser, args)
    # One after the other, never at once: on a small machine each would slow the other down.
    throughput = ingest.measure(args) if args.with_ingest else None
    result = run(args)
    if throughput is not None:
        result = {**result, "ingest": throughput}
        print(ingest.table(throughput))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "telemetry.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "ingest"}, indent=2))


if __name__ == "__main__":
    main()
