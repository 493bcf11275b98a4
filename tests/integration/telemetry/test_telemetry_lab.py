"""Real agents on lab hosts, wired by provisioning, shipping to a real collector over TLS on the lab bridge
address: nothing lost and nothing twice across a collector outage, a wrong token refused with the spool kept,
and a stopped agent turning silent in `fleet status`."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from orchestrator.lab.state import HostState

from .conftest import GAME_LOG, Telemetry, wait_for

pytestmark = pytest.mark.lab

SPOOL = "/var/spool/sentry-agent"
CONFIG = "/etc/sentry/agent.json"


def host_of_tier(tel: Telemetry, tier: str) -> HostState:
    name = next(h for h, t in tel.provisioned.tiers.items() if t == tier)
    return next(h for h in tel.provisioned.env.hosts() if h.name == name)


def spool_records(tel: Telemetry, host: HostState) -> list[dict[str, Any]]:
    out = tel.provisioned.env.ssh(host, f"cat {SPOOL}/spool-*.jsonl 2>/dev/null || true")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def attack(tel: Telemetry, host: HostState, ips: list[str], lines_per_ip: int) -> None:
    burst = "".join(f"LOGIN FAILED user=u{i} ip={ip}\\n" for ip in ips for i in range(lines_per_ip))
    tel.provisioned.env.ssh(host, f"mkdir -p /var/log/sentry-game && printf '{burst}' >> {GAME_LOG}")


def unban(tel: Telemetry, host: HostState) -> None:
    tel.provisioned.env.ssh(host, "nft flush set inet sentry banned_v4", check=False)


def test_collector_down_then_up_every_record_arrives_exactly_once(telemetry: Telemetry) -> None:
    tel = telemetry
    host = host_of_tier(tel, "enterprise")  # threshold 4 (playbooks/vars/tiers.yml)
    # Wired by provisioning: the host's heartbeats arrive.
    boot = wait_for("a heartbeat from the wired agent", lambda: tel.rows("telemetry_heartbeats", host.name), 60)[-1][0]
    ips = [f"203.0.113.{i}" for i in range(10, 40)]
    tel.stop()
    try:
        attack(tel, host, ips, 4)
        written = wait_for(
            "every alert in the host's spool",
            lambda: (r := [x for x in spool_records(tel, host) if x.get("ip") in ips]) and len(r) == len(ips) and r,
            30,
        )
        # The collector stays down 30 s (enough for the shipper to back off several times; kept short to
        # spare CI minutes, the backoff is capped at 60 s whatever the outage).
        time.sleep(30)  # the fault itself, not a wait for a condition
        on_host = {(r["boot"], r["seq"]) for r in spool_records(tel, host) if r["boot"] == boot}
    finally:
        tel.start()
    stored_alerts = wait_for(
        "every alert stored",
        lambda: (
            (a := [r for r in tel.rows("telemetry_alerts", host.name, "boot, seq, ip") if r[2] in ips])
            and len(a) >= len(ips)
            and a
        ),
        120,
    )
    assert sorted(r[2] for r in stored_alerts) == sorted(ips)  # each attacker once
    assert {(r["boot"], r["seq"]) for r in written} == {(r[0], r[1]) for r in stored_alerts}
    keys = [(r[0], r[1]) for t in ("telemetry_alerts", "telemetry_heartbeats") for r in tel.rows(t, host.name)]
    assert len(keys) == len(set(keys))
    seqs = sorted(s for b, s in keys if b == boot)
    assert seqs == list(range(seqs[-1] + 1)), "a record of this agent run is missing"
    assert on_host <= set(keys), "a record the host spooled during the outage never arrived"
    unban(tel, host)


def test_a_wrong_token_is_refused_nothing_stored_and_the_agent_keeps_its_spool(telemetry: Telemetry) -> None:
    tel = telemetry
    env = tel.provisioned.env
    host = host_of_tier(tel, "professional")
    original = env.ssh(host, f"cat {CONFIG}")
    wrong = {**json.loads(original), "collector_token": "WRONG-TOKEN-0123456789"}
    env.ssh(host, f"printf '%s' '{json.dumps(wrong)}' > {CONFIG} && systemctl restart sentry-agent")
    try:
        refused = wait_for(
            "the agent to hear 401",
            lambda: "collector answered 401" in env.ssh(host, "journalctl -u sentry-agent -n 50 --no-pager"),
            30,
        )
        assert refused
        boot = spool_records(tel, host)[-1]["boot"]
        assert tel.rows("telemetry_heartbeats", host.name, "boot, seq") and not [
            r for t in ("telemetry_alerts", "telemetry_heartbeats") for r in tel.rows(t, host.name) if r[0] == boot
        ], "a record sent with a wrong token was stored"
        kept = [r for r in spool_records(tel, host) if r["boot"] == boot]
        assert kept and kept[0]["event"] == "start"  # still in the spool
        assert "WRONG-TOKEN" not in env.ssh(host, "journalctl -u sentry-agent -n 200 --no-pager")
    finally:
        env.ssh(
            host, f"printf '%s' '{original.strip()}' > {CONFIG} && chown sentry:sentry {CONFIG} && chmod 600 {CONFIG}"
        )
        env.ssh(host, "systemctl restart sentry-agent")
    # With the right token again, what the refused run spooled arrives.
    wait_for(
        "the refused run's records to arrive",
        lambda: any(r[0] == boot for r in tel.rows("telemetry_heartbeats", host.name)),
        60,
    )


def test_a_stopped_agent_turns_silent_in_fleet_status(telemetry: Telemetry) -> None:
    tel = telemetry
    env = tel.provisioned.env
    host = host_of_tier(tel, "enterprise")
    interval = 15  # the enterprise tier's heartbeat cadence

    def state() -> str:
        rows = json.loads(tel.fleet("status", "--client", tel.provisioned.client, "--json"))
        rows = rows["hosts"] if isinstance(rows, dict) else rows
        return str(next(r for r in rows if r["host"] == host.name)["state"])

    wait_for("the host online", lambda: state() == "online", 60)
    env.ssh(host, "systemctl stop sentry-agent")
    stopped = time.monotonic()
    try:
        wait_for("the host silent", lambda: state() == "silent", 3 * interval + 5)
        print(f"silent {time.monotonic() - stopped:.1f}s after the agent stopped")
    finally:
        env.ssh(host, "systemctl start sentry-agent")
    wait_for("the host online again", lambda: state() == "online", 60)
