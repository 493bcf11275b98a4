"""The pure detection rules: what opens an incident, and the dedup keys that make one attack one incident."""

from __future__ import annotations

import datetime as dt

from orchestrator.incidents.detect import AlertIn, EventIn, SilentHost, detect

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
TIERS = {"acme": "enterprise", "globex": "essentials"}


def attack(n: int, ip: str = "198.51.100.7", host: str = "game1", severity: str = "critical") -> list[AlertIn]:
    return [AlertIn("acme", host, "game-bruteforce", ip, severity) for _ in range(n)]


def test_500_alerts_of_one_attack_are_one_incident_across_hosts_and_addresses() -> None:
    (spec,) = detect([*attack(300), *attack(200, host="game2", ip="203.0.113.9")], [], [], TIERS, NOW)
    assert (spec.kind, spec.dedup_key, spec.occurrences, spec.hosts) == (
        "attack",
        "attack:game-bruteforce",
        500,
        ("game1", "game2"),
    )
    assert spec.title == "game-bruteforce attack" and spec.detail["first_address"] == "198.51.100.7"
    assert spec.severity == "critical" and not spec.once
    assert spec.due_at == NOW + dt.timedelta(minutes=30)  # enterprise target


def test_only_critical_rules_open_incidents_and_each_rule_and_client_is_its_own_attack() -> None:
    other = [AlertIn("acme", "game1", "ssh-bruteforce", "192.0.2.1", "critical")]
    elsewhere = [AlertIn("globex", "db1", "game-bruteforce", "192.0.2.1", "critical")]
    specs = detect([*attack(5, severity="high"), *attack(2), *other, *elsewhere], [], [], TIERS, NOW)
    assert [(s.client, s.dedup_key, s.occurrences) for s in specs] == [
        ("acme", "attack:game-bruteforce", 2),
        ("acme", "attack:ssh-bruteforce", 1),
        ("globex", "attack:game-bruteforce", 1),
    ]


def test_silence_halt_and_drift_and_clients_gone_are_ignored() -> None:
    last = dt.datetime(2026, 12, 7, 11, 55, tzinfo=dt.UTC)
    events = [
        EventIn("rollout.state", "acme", "ro-1", {"from": "running", "to": "halted"}),
        EventIn("rollout.state", "acme", "ro-2", {"from": "running", "to": "completed"}),
        EventIn("audit.recorded", "globex", "au-1", {"result": "drift", "hosts": {"db1": "drift", "db2": "compliant"}}),
        EventIn("audit.recorded", "globex", "au-2", {"result": "compliant", "hosts": {}}),
        EventIn("rollout.state", "removed-client", "ro-3", {"to": "halted"}),
        EventIn("defence.push_state", "acme", "dp-1", {"from": "running", "to": "halted", "halt_reason": "canary"}),
        EventIn("defence.push_state", "acme", "dp-2", {"from": "running", "to": "completed"}),
    ]
    specs = detect([], events, [SilentHost("acme", "game2", last), SilentHost("gone", "x", last)], TIERS, NOW)
    got = {(s.client, s.kind): s for s in specs}
    assert set(got) == {
        ("acme", "rollout_halted"), ("acme", "push_halted"), ("globex", "audit_drift"), ("acme", "silent_host")
    }  # fmt: skip
    halted_push = got[("acme", "push_halted")]
    assert (halted_push.dedup_key, halted_push.title, halted_push.once) == (
        "push_halted:dp-1",
        "defence push dp-1 halted: canary",
        True,
    )
    assert got[("acme", "rollout_halted")].dedup_key == "rollout_halted:ro-1" and got[("acme", "rollout_halted")].once
    assert got[("globex", "audit_drift")].hosts == ("db1",)
    silent = got[("acme", "silent_host")]
    assert silent.dedup_key == f"silent:game2:{last.isoformat()}" and silent.once and silent.hosts == ("game2",)
    # essentials on a Monday noon UTC (13:00 CET, in hours): target 240 min from now.
    assert got[("globex", "audit_drift")].due_at == NOW + dt.timedelta(minutes=240)
