"""Faults on the lab: the collector and the agent killed (SIGKILL) while a backlog is being shipped, and a
spool that overflows while the collector is down. Nothing is stored twice, and what is not stored is counted
as dropped and reported in the next heartbeat."""

from __future__ import annotations

import json
import signal

import pytest

from orchestrator.lab.state import HostState

from .conftest import Telemetry, wait_for
from .test_telemetry_lab import CONFIG, attack, host_of_tier, spool_records, unban

pytestmark = pytest.mark.lab


def bans_total(tel: Telemetry, host: HostState) -> int:
    """The agent's own count of bans since it started (its /metrics on the host's loopback)."""
    script = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9110/metrics', timeout=5).read().decode())"
    out = tel.provisioned.env.ssh(host, f'python3 -c "{script}"', check=False)
    return sum(int(float(line.split()[-1])) for line in out.splitlines() if line.startswith("sentry_agent_bans_total{"))


def stored_alerts(tel: Telemetry, host: str, ips: set[str]) -> list[tuple[str, int, str]]:
    return [(r[0], r[1], r[2]) for r in tel.rows("telemetry_alerts", host, "boot, seq, ip") if r[2] in ips]


def test_collector_and_agent_killed_mid_shipment_nothing_lost_nothing_twice(telemetry: Telemetry) -> None:
    tel = telemetry
    env = tel.provisioned.env
    host = host_of_tier(tel, "enterprise")  # threshold 4
    ips = [f"198.18.{i // 250}.{i % 250 + 1}" for i in range(600)]  # more than one batch (500 records)
    wanted = set(ips)
    tel.stop()
    try:
        attack(tel, host, ips, 4)
        wait_for(
            "every alert in the spool",
            lambda: len([r for r in spool_records(tel, host) if r.get("ip") in wanted]) == len(ips),
            60,
        )
        boot = next(r["boot"] for r in spool_records(tel, host) if r.get("ip") in wanted)
    finally:
        tel.start()
    # The first rows are in: the collector dies (its answer may be lost), then the agent dies mid-shipment.
    wait_for("the first rows", lambda: stored_alerts(tel, host.name, wanted), 90, 0.05)
    tel.stop(signal.SIGKILL)
    env.ssh(host, "systemctl kill --signal=SIGKILL sentry-agent")
    tel.start()
    rows = wait_for(
        "every alert stored",
        lambda: (a := stored_alerts(tel, host.name, wanted)) and len(a) >= len(ips) and a,
        120,
    )
    assert sorted(r[2] for r in rows) == sorted(ips)  # each once
    keys = [(r[0], r[1]) for t in ("telemetry_alerts", "telemetry_heartbeats") for r in tel.rows(t, host.name)]
    assert len(keys) == len(set(keys))
    seqs = sorted(s for b, s in keys if b == boot)
    # The killed run never wrote its stop heartbeat; everything it did write arrived.
    assert seqs == list(range(seqs[-1] + 1))
    wait_for(
        "the agent back", lambda: env.ssh(host, "systemctl is-active sentry-agent", check=False).strip() == "active", 30
    )
    unban(tel, host)


def test_a_full_spool_drops_counts_and_reports_it_in_the_next_heartbeat(telemetry: Telemetry) -> None:
    tel = telemetry
    env = tel.provisioned.env
    host = host_of_tier(tel, "essentials")  # threshold 10
    original = env.ssh(host, f"cat {CONFIG}")
    small = {**json.loads(original), "spool_max_bytes": 65536, "heartbeat_interval_seconds": 3}
    ips = [f"198.19.{i // 250}.{i % 250 + 1}" for i in range(300)]  # ~130 KiB of alerts into a 64 KiB spool
    wanted = set(ips)
    tel.stop()
    try:
        before = {r["boot"] for r in spool_records(tel, host)}
        env.ssh(host, f"printf '%s' '{json.dumps(small)}' > {CONFIG} && systemctl restart sentry-agent")
        boot = wait_for(
            "the new run's first record",
            lambda: [r["boot"] for r in spool_records(tel, host) if r["boot"] not in before][:1],
            30,
        )[0]
        attack(tel, host, ips, 10)
        wait_for("the agent to detect every attacker", lambda: bans_total(tel, host) >= len(ips), 60)
    finally:
        tel.start()

    def accounted() -> tuple[int, int] | None:
        beats = tel.rows("telemetry_heartbeats", host.name, "boot, seq, dropped_alerts")
        dropped = max((int(r[2] or 0) for r in beats if r[0] == boot), default=0)
        stored = len(stored_alerts(tel, host.name, wanted))
        return (stored, dropped) if stored + dropped >= len(ips) else None

    try:
        stored, dropped = wait_for("every alert stored or reported dropped by a heartbeat", accounted, 90)
        assert dropped > 0, "the spool never overflowed: the test proves nothing"
        assert stored + dropped == len(ips), (stored, dropped)
        rows = stored_alerts(tel, host.name, wanted)
        assert len(rows) == len({r[2] for r in rows})  # none twice
    finally:
        # The host's own configuration back, pass or fail: later modules audit these hosts.
        restore = f"printf '%s' '{original.strip()}' > {CONFIG} && chown sentry:sentry {CONFIG} && chmod 600 {CONFIG}"
        env.ssh(host, f"{restore} && systemctl restart sentry-agent")
        unban(tel, host)
