"""Real agents on lab hosts, wired by provisioning, shipping to a real collector over TLS on the lab bridge
address: nothing lost and nothing twice across a collector outage, a wrong token refused with the spool kept,
and a stopped agent turning silent in `fleet status`."""

from __future__ import annotations

import itertools
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


LOADGEN = "/run/sentry-loadgen"
OUTAGE_SECONDS = 65  # at least 60 s: past the shipper's backoff cap, so it waits its longest at least once
LOADGEN_PERIOD = 0.5  # one new attacker (4 failed logins, the enterprise threshold) every half second
LOADGEN_MAX = 250  # addresses 198.51.100.1-250, enough for ~2 minutes


def start_load(tel: Telemetry, host: HostState) -> None:
    """A load generator on the host: a new attacker every LOADGEN_PERIOD until told to stop, each address
    recorded after its lines were written (the list the stored alerts are compared with)."""
    script = (
        f"i=0; while [ ! -e {LOADGEN}/stop ] && [ $i -lt {LOADGEN_MAX} ]; do "
        'ip="198.51.100.$((i + 1))"; '
        f'printf "LOGIN FAILED user=a ip=$ip\\nLOGIN FAILED user=b ip=$ip\\n'
        f'LOGIN FAILED user=c ip=$ip\\nLOGIN FAILED user=d ip=$ip\\n" >> {GAME_LOG}; '
        f'echo "$ip" >> {LOADGEN}/ips; i=$((i + 1)); sleep {LOADGEN_PERIOD}; done; touch {LOADGEN}/done'
    )
    tel.provisioned.env.ssh(
        host,
        # ';', not '&&': a trailing '&' would put the whole list in a background subshell that keeps SSH's
        # output open until the generator ends; only the generator goes to the background, its fds closed.
        f"rm -rf {LOADGEN}; mkdir -p {LOADGEN} /var/log/sentry-game; "
        f"setsid sh -c '{script}' </dev/null >/dev/null 2>&1 &",
    )


def load_written(tel: Telemetry, host: HostState) -> list[str]:
    return tel.provisioned.env.ssh(host, f"cat {LOADGEN}/ips 2>/dev/null || true").split()


def test_collector_down_then_up_every_record_arrives_exactly_once(telemetry: Telemetry) -> None:
    """A load generator writes attacks on the host before, throughout and after a collector outage of over a
    minute; then every alert it caused is stored exactly once (addresses and count compared with what it wrote),
    and no key of the agent's run is missing or stored twice."""
    tel = telemetry
    host = host_of_tier(tel, "enterprise")  # threshold 4 (playbooks/vars/tiers.yml)
    # Wired by provisioning: the host's heartbeats arrive.
    wait_for("a heartbeat", lambda: tel.rows("telemetry_heartbeats", host.name), 60)
    # The agent run under test is the one writing the spool now. Not the run of the newest stored heartbeat: the
    # runs provisioning restarted can arrive in one batch, all with one receive time.
    boot = wait_for("a record of the agent's current run", lambda: spool_records(tel, host)[-1:], 60)[0]["boot"]
    # Records of this run before the load (earlier tests may have attacked from these addresses) do not count.
    before = max(
        r[1] for t in ("telemetry_alerts", "telemetry_heartbeats") for r in tel.rows(t, host.name) if r[0] == boot
    )
    unban(tel, host)
    start_load(tel, host)
    try:
        wait_for("the load generator to write", lambda: len(load_written(tel, host)) >= 4, 30)
        tel.stop()
        down = time.monotonic()
        try:
            # The fault itself lasts OUTAGE_SECONDS (the sleeps are its duration, not a wait for a condition);
            # every 5 s the generator must have written more: the load is continuous throughout.
            progress = [len(load_written(tel, host))]
            while (elapsed := time.monotonic() - down) < OUTAGE_SECONDS:
                time.sleep(min(5.0, OUTAGE_SECONDS - elapsed))
                progress.append(len(load_written(tel, host)))
            outage = time.monotonic() - down
        finally:
            restarted = tel.provisioned.env.ssh(host, "date +%s").strip()
            tel.start()
        # Still writing after the collector is back, then stopped.
        at_restart = len(load_written(tel, host))
        wait_for(
            "the load generator to write after the outage", lambda: len(load_written(tel, host)) >= at_restart + 10, 30
        )
    finally:
        tel.provisioned.env.ssh(host, f"touch {LOADGEN}/stop")
    wait_for(
        "the load generator to stop",
        lambda: "yes" in tel.provisioned.env.ssh(host, f"test -e {LOADGEN}/done && echo yes || true"),
        30,
    )
    written = load_written(tel, host)
    assert len(written) == len(set(written)) and len(written) < LOADGEN_MAX, written
    assert all(after > before for before, after in itertools.pairwise(progress)), progress
    assert progress[-1] - progress[0] >= OUTAGE_SECONDS / LOADGEN_PERIOD / 3, progress

    def ours() -> list[Any]:
        rows = tel.rows("telemetry_alerts", host.name, "boot, seq, ip")
        return [r for r in rows if r[0] == boot and r[1] > before and r[2] in set(written)]

    # The shipper's backoff is capped at 60 s: everything is in well within two caps plus the ship interval.
    try:
        stored = wait_for("every alert the load caused", lambda: (a := ours()) and len(a) >= len(written) and a, 150)
    except AssertionError as exc:
        got = ours()
        missing = sorted(set(written) - {r[2] for r in got})
        spooled = [r for r in spool_records(tel, host) if r.get("ip") in missing]
        journal = tel.provisioned.env.ssh(host, "journalctl -u sentry-agent -n 15 --no-pager", check=False)
        raise AssertionError(
            f"{exc}: {len(got)} of {len(written)} stored; missing {missing[:10]} ({len(missing)}); "
            f"of those still in the host's spool: {len(spooled)}; agent journal:\n{journal}\n"
            f"collector log:\n{tel.log_tail()}"
        ) from None
    assert sorted(r[2] for r in stored) == sorted(written), "an attacker's alert is missing or stored twice"
    assert len(stored) == len(written)
    keys = [(r[0], r[1]) for t in ("telemetry_alerts", "telemetry_heartbeats") for r in tel.rows(t, host.name)]
    assert len(keys) == len(set(keys)), "a record stored twice"
    seqs = sorted(s for b, s in keys if b == boot)
    assert seqs == list(range(seqs[-1] + 1)), "a record of this agent run is missing"
    # Once the collector is back, no batch failed: the kept-alive connections the collector ends when idle are
    # replaced without an error (each heartbeat after a pause used to fail once with RemoteDisconnected).
    since = tel.provisioned.env.ssh(host, f"journalctl -u sentry-agent --since=@{restarted} --no-pager -o cat")
    assert "RemoteDisconnected" not in since and "closed the connection" not in since, since[-2000:]
    print(f"{len(written)} attackers over a {outage:.0f}s outage: {len(stored)} alerts, each once")
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
