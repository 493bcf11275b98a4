"""The defence lane end to end on lab hosts: packs built and signed by ``sentryctl defence build``, pushed canary
first through the real collector over TLS, hot-swapped by the real agents, gated by their heartbeats, and reverted
by the kill switch. The tests run in order and share the module's lab state (each names what it leaves behind)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orchestrator.paths import project_root

from ..telemetry.conftest import GAME_LOG, wait_for
from .conftest import Defence

pytestmark = pytest.mark.lab

RELEASE_RULES: dict[str, Any] = json.loads((project_root() / "agent" / "rules" / "rules.json").read_text())
EXPLOIT_RULE = {
    "id": "game-exploit",
    "description": "A probe of the game server's known hole (arrives only in a pack).",
    "source": "game",
    "pattern": r"EXPLOIT probe=\S+ ip=(?P<ip>[0-9a-fA-F:.]+)\s*$",
    "threshold": 2,
    "window_seconds": 60,
    "ban_seconds": 600,
}
V1, V2, V3 = "1.0.0", "1.1.0", "1.2.0"
BLOCKED_NET = "192.0.2.0/24"
FORGED_NET = "198.18.0.0/24"
KILL_SWITCH_SECONDS = 60.0
PUSH_ARGS = ("--emergency", "lab test outside the client's window", "--dwell", "10s", "--yes", "--json")


def rules(version: str, *extra: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": version, "rules": [*RELEASE_RULES["rules"], *extra], **top}


def blocklist(net: str) -> list[dict[str, Any]]:
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [{"net": net, "expires": expires, "comment": "lab test"}]


def canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def heartbeat_rows(d: Defence, since: dt.datetime) -> list[tuple[str, dict[str, Any]]]:
    """(host, raw heartbeat) of every heartbeat the collector received since ``since``."""
    with d.ledger() as ledger, ledger._engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT host, raw, received_at FROM telemetry_heartbeats WHERE client = :c ORDER BY id"),
            {"c": d.client},
        ).all()
    found = []
    for host, raw, received in rows:
        when = dt.datetime.fromisoformat(received) if isinstance(received, str) else received
        if (when if when.tzinfo else when.replace(tzinfo=dt.UTC)) >= since:
            found.append((host, json.loads(raw) if isinstance(raw, str) else raw))
    return found


def test_a_pack_whose_regex_backtracks_catastrophically_is_refused_at_build(defence: Defence, tmp_path: Path) -> None:
    bad = {**EXPLOIT_RULE, "id": "evil-regex", "pattern": r"^(a+)+$x(?P<ip>\S+)"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rules("0.9.0", bad)))
    started = time.monotonic()
    proc = defence.sentryctl("defence", "build", "--version", "0.9.0", "--rules", str(path), timeout=120)
    assert proc.returncode != 0
    assert "evil-regex" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert time.monotonic() - started < 60, "the backtracking check is bounded"
    with defence.ledger() as ledger:
        assert ledger.pack("0.9.0") is None, "a refused pack is neither recorded nor servable"


def test_a_pack_reaches_every_host_and_its_new_rule_detects_the_attack(defence: Defence) -> None:
    d = defence
    assert "game-exploit" not in {r["id"] for r in RELEASE_RULES["rules"]}, "the rule must arrive only in the pack"
    digest = d.build(V1, rules("2026.12.7-pack1", EXPLOIT_RULE), blocklist(BLOCKED_NET))
    proc = d.sentryctl("defence", "push", V1, "--client", d.client, *PUSH_ARGS)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert json.loads(proc.stdout)["state"] == "completed", proc.stdout
    names = [h.name for h in d.hosts()]
    d.wait_digest(names, digest, 30)  # the push returned once every host reported it: this is immediate
    for host in d.hosts():
        assert BLOCKED_NET in d.nft_set(host), f"{host.name}: the pack's blocklist is not in the ban set"

    # The attack, on the last host (not the canary): two probes from one address, the pack rule's threshold.
    host = d.hosts()[-1]
    attacker = "203.0.113.77"
    lines = "".join(f"EXPLOIT probe=p{i} ip={attacker}\\n" for i in range(2))
    d.provisioned.env.ssh(host, f"mkdir -p /var/log/sentry-game && printf '{lines}' >> {GAME_LOG}")

    def alert() -> bool:
        with d.ledger() as ledger:
            return any(a.rule == "game-exploit" and a.ip == attacker for a in ledger.telemetry_alerts(d.client))

    wait_for("the pack rule's alert", alert, 30)
    assert attacker in d.nft_set(host)

    status = d.sentryctl("fleet", "status", "--client", d.client, "--json")
    assert status.returncode == 0, status.stderr
    for name in names:
        assert V1 in json.dumps([e for e in _entries(json.loads(status.stdout)) if e.get("host") == name]), name


def _entries(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, list):
                return [e for e in value if isinstance(e, dict)]
        return []
    return [e for e in data if isinstance(e, dict)]


def test_a_forged_or_altered_pack_is_refused_by_the_agent_and_nothing_is_applied(defence: Defence) -> None:
    d = defence
    forged_host, altered_host = d.hosts()[1], d.hosts()[2]
    with d.ledger() as ledger:
        v1 = ledger.pack(V1)
        blob = ledger.pack_blob(V1)
    assert v1 is not None and blob is not None
    content, signature, _ = blob
    doc = json.loads(content)
    # Forged: a well-formed pack signed by a key that is not Sentry's.
    entry = {"net": FORGED_NET, "expires_at": doc["blocklist"][0]["expires_at"], "comment": "forged"}
    forged = canonical({**doc, "version": "1.0.1-forged", "blocklist": [entry]})
    forged_sig = Ed25519PrivateKey.generate().sign(forged)
    # Altered: Sentry's pack with one entry changed after signing, its real signature kept.
    altered = content.replace(BLOCKED_NET.encode(), FORGED_NET.encode())
    assert altered != content
    cases = {
        forged_host.name: ("1.0.1-forged", forged, forged_sig),
        altered_host.name: ("1.0.1-altered", altered, signature),
    }
    with d.ledger() as ledger:
        for host, (version, body, sig) in cases.items():
            # As someone with write access to the ledger (not to the key) would: straight into the tables.
            digest = hashlib.sha256(body).hexdigest()
            ledger.record_pack(version, digest, sig, body, rules_version="x", rule_count=3, blocklist_count=1)
            ledger.assign_pack(d.client, [host], version, digest, actor="attacker")

    def refused() -> bool:
        beats = d.heartbeats()
        return all(beats[h].pack_status == "refused" and beats[h].pack_digest == v1.digest for h in cases) and all(
            _raw_refused(d, h) == hashlib.sha256(cases[h][1]).hexdigest() for h in cases
        )

    wait_for("both agents to report the refusal", refused, 30)
    for host in (forged_host, altered_host):
        listing = d.nft_set(host)
        assert FORGED_NET not in listing and BLOCKED_NET in listing, f"{host.name}: {listing}"
    with d.ledger() as ledger:
        ledger.revert_packs(d.client, list(cases), reason="test: undo the attacker's assignment")


def _raw_refused(d: Defence, host: str) -> str | None:
    rows = heartbeat_rows(d, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2))
    mine = [raw for h, raw in rows if h == host]
    return mine[-1].get("pack_refused_digest") if mine else None


def test_a_pack_that_breaks_the_detector_halts_at_the_canary_and_no_other_host_sees_it(defence: Defence) -> None:
    d = defence
    broken = d.build(V2, rules("2026.12.7-pack2", EXPLOIT_RULE, self_test="fail"), None)
    started = dt.datetime.now(dt.UTC)
    proc = d.sentryctl("defence", "push", V2, "--client", d.client, *PUSH_ARGS)
    assert proc.returncode != 0, proc.stdout
    result = json.loads(proc.stdout)
    assert result["state"] == "halted", result
    seen = {
        host
        for host, raw in heartbeat_rows(d, started)
        if broken in (raw.get("pack_digest"), raw.get("pack_refused_digest"))
    }
    assert len(seen) == 1, f"hosts that saw the broken pack: {sorted(seen)} (only the canary may)"
    (canary,) = seen
    with d.ledger() as ledger:
        good = ledger.pack(V1)
        assignments = {a.host: a for a in ledger.assignments(d.client)}
    assert good is not None
    assert all(a.version == V1 for a in assignments.values()), assignments
    d.wait_digest([canary], good.digest, 30)


def test_the_kill_switch_returns_every_host_to_its_previous_pack_within_a_minute(defence: Defence) -> None:
    d = defence
    tighter = {**EXPLOIT_RULE, "threshold": 3}
    d.build(V3, rules("2026.12.7-pack3", tighter), blocklist(BLOCKED_NET))
    proc = d.sentryctl("defence", "push", V3, "--client", d.client, *PUSH_ARGS)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    with d.ledger() as ledger:
        previous = ledger.pack(V1)
    assert previous is not None
    names = [h.name for h in d.hosts()]
    started = time.monotonic()
    revert = d.sentryctl("defence", "revert", "--client", d.client, "--yes", "--json")
    assert revert.returncode == 0, revert.stderr + revert.stdout
    d.wait_digest(names, previous.digest, KILL_SWITCH_SECONDS - (time.monotonic() - started))
    print(f"kill switch: every host back on {V1} after {time.monotonic() - started:.1f}s")
