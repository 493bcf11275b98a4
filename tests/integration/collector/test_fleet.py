"""``sentryctl fleet`` over what a real collector stored: online, silent (by the receive clock), never seen."""

from __future__ import annotations

import json
import os
import subprocess

from .conftest import SENTRYCTL, Collector, boot_id, record


def fleet(collector: Collector, *args: str) -> object:
    env = {**os.environ, "SENTRY_HOME": str(collector.home), "SENTRY_DB_URL": collector.db_url}
    done = subprocess.run(
        [SENTRYCTL, "fleet", *args, "--json"], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fleet_status_and_alerts(collector: Collector) -> None:
    boot = boot_id()
    # game1's clock is hours off; its state still comes from the receive time.
    batch = [
        record("heartbeat", "game1", boot, 0, time_="2026-01-01T00:00:00Z", interval_seconds=10, spool_records=4),
        record("alert", "game1", boot, 1),
    ]
    assert collector.ingest("game1", batch).status == 200
    assert collector.ingest("r1", [record("heartbeat", "r1", boot_id(), 0)], client="rival").status == 200

    rows = {(r["client"], r["host"]): r for r in fleet(collector, "status")}  # type: ignore[union-attr]
    assert rows[("acme", "game1")]["state"] == "online"
    assert rows[("acme", "game1")]["spool_records"] == 4
    assert rows[("acme", "game1")]["alerts_last_hour"] == 1
    assert rows[("acme", "game2")]["state"] == "never seen"
    assert rows[("rival", "r1")]["state"] == "online"
    assert {r["host"] for r in fleet(collector, "status", "--client", "acme")} == {"game1", "game2"}  # type: ignore[union-attr]

    # 31 s without a heartbeat at a 10 s interval: silent.
    collector.sql(
        "UPDATE telemetry_heartbeats SET received_at = :t WHERE host = 'game1'",
        t="2026-12-01 00:00:00" if collector.db_url.startswith("sqlite") else "2026-12-01T00:00:00+00:00",
    )
    rows = {(r["client"], r["host"]): r for r in fleet(collector, "status", "--client", "acme")}  # type: ignore[union-attr]
    assert rows[("acme", "game1")]["state"] == "silent"

    alerts = fleet(collector, "alerts", "--client", "acme", "--since", "1h")
    assert [(a["host"], a["rule"], a["ip"]) for a in alerts] == [("game1", "ssh-bruteforce", "198.51.100.7")]  # type: ignore[union-attr]
    assert fleet(collector, "alerts", "--client", "rival") == []
