"""Incidents in the ledger on both backends: dedup while open, a new incident after resolve, refused transitions,
every step on the timeline and in the hash chain with who and when; the CLI over it; compliance per month."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.incidents import compliance
from orchestrator.ledger import Ledger, LedgerError
from orchestrator.ledger.incidents import IncidentSpec, IncidentStateError, WatermarkMoved

SENTRYCTL = str(Path(sys.executable).parent / "sentryctl")
T0 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


def spec(key: str = "attack:ssh-bruteforce", n: int = 1, host: str = "game1") -> IncidentSpec:
    return IncidentSpec(
        client="acme",
        tier="enterprise",
        kind="attack",
        severity="critical",
        dedup_key=key,
        title="ssh-bruteforce attack",
        hosts=(host,),
        due_at=T0 + dt.timedelta(minutes=30),
        occurrences=n,
    )


@pytest.fixture
def acme(ledger: Ledger) -> Ledger:
    ledger.add_client("acme", "enterprise", {})
    return ledger


def test_one_open_incident_per_dedup_key_and_a_new_one_after_resolve(acme: Ledger) -> None:
    first = acme.apply_detection([spec(n=300)], {}, at=T0)
    assert len(first.opened) == 1 and not first.merged
    again = acme.apply_detection([spec(n=200, host="game2")], {}, at=T0 + dt.timedelta(minutes=1))
    assert not again.opened and len(again.merged) == 1
    incident = acme.incident(first.opened[0].id)
    assert (incident.occurrences, incident.hosts, incident.state) == (500, ("game1", "game2"), "open")
    assert incident.last_seen_at == T0 + dt.timedelta(minutes=1)
    # Acknowledged is still open for dedup; resolved frees the key.
    acme.ack_incident(incident.id, by="alice", at=T0 + dt.timedelta(minutes=2))
    assert acme.apply_detection([spec()], {}, at=T0 + dt.timedelta(minutes=3)).merged
    acme.resolve_incident(incident.id, by="bob", note="banned upstream", at=T0 + dt.timedelta(minutes=9))
    later = acme.apply_detection([spec()], {}, at=T0 + dt.timedelta(minutes=10))
    assert len(later.opened) == 1 and later.opened[0].id != incident.id
    assert [i.state for i in acme.incidents("acme")] == ["open", "resolved"]


def test_transitions_are_refused_once_done_and_unknown_ids_named(acme: Ledger) -> None:
    iid = acme.apply_detection([spec()], {}, at=T0).opened[0].id
    done = acme.ack_incident(iid, by="alice", at=T0 + dt.timedelta(minutes=4))
    assert (done.acked_by, done.seconds_to_ack) == ("alice", 240.0)
    with pytest.raises(IncidentStateError, match="is acked; only an open incident can be acknowledged"):
        acme.ack_incident(iid, by="bob", at=T0)
    resolved = acme.resolve_incident(iid, by="bob", at=T0 + dt.timedelta(minutes=20))
    assert (resolved.resolved_by, resolved.seconds_to_resolve) == ("bob", 1200.0)
    with pytest.raises(IncidentStateError, match="already resolved"):
        acme.resolve_incident(iid, by="bob", at=T0)
    with pytest.raises(IncidentStateError, match="is resolved"):
        acme.ack_incident(iid, at=T0)
    with pytest.raises(LedgerError, match="no incident 999"):
        acme.ack_incident(999, at=T0)


def test_every_step_is_on_the_timeline_and_in_the_chain_with_who_and_when(acme: Ledger) -> None:
    iid = acme.apply_detection([spec()], {}, at=T0, actor="collector@c1").opened[0].id
    acme.apply_detection([spec(n=4)], {}, at=T0 + dt.timedelta(seconds=30), actor="collector@c2")
    acme.record_incident_step(iid, "paged", {"target": "primary"}, at=T0 + dt.timedelta(seconds=31), actor="eng")
    acme.ack_incident(iid, by="alice", at=T0 + dt.timedelta(minutes=5))
    acme.resolve_incident(iid, by="bob", note="done", at=T0 + dt.timedelta(minutes=7))
    steps = acme.incident_steps(iid)
    assert [(s.step, s.actor) for s in steps] == [
        ("opened", "collector@c1"),
        ("merged", "collector@c2"),
        ("paged", "eng"),
        ("acked", "alice"),
        ("resolved", "bob"),
    ]
    assert steps[1].detail["occurrences"] == 4 and steps[4].detail["note"] == "done"
    events = [e for e in acme.events("acme") if e.kind.startswith("incident.")]
    assert [(e.kind, e.actor, e.subject) for e in events] == [
        ("incident.opened", "collector@c1", f"incident/{iid}"),
        ("incident.merged", "collector@c2", f"incident/{iid}"),
        ("incident.paged", "eng", f"incident/{iid}"),
        ("incident.acked", "alice", f"incident/{iid}"),
        ("incident.resolved", "bob", f"incident/{iid}"),
    ]
    assert events[3].payload["at"] == (T0 + dt.timedelta(minutes=5)).isoformat()
    assert acme.verify().ok


def test_a_moved_watermark_rolls_the_whole_pass_back(acme: Ledger) -> None:
    acme.apply_detection([spec()], {"alerts": (0, 10)}, at=T0)
    assert acme.incident_watermarks() == {"alerts": 10, "events": 0}
    with pytest.raises(WatermarkMoved):
        acme.apply_detection([spec(key="other")], {"alerts": (0, 12)}, at=T0)
    assert [i.dedup_key for i in acme.incidents()] == [spec().dedup_key]
    assert acme.incidents()[0].occurrences == 1
    acme.apply_detection([], {"alerts": (10, 12)}, at=T0)
    assert acme.incident_watermarks() == {"alerts": 12, "events": 0}


def test_compliance_per_client_per_month(acme: Ledger) -> None:
    acme.add_client("rival", "enterprise", {})
    within = acme.apply_detection([spec("a")], {}, at=T0).opened[0].id
    late = acme.apply_detection([spec("b")], {}, at=T0).opened[0].id
    acme.apply_detection([spec("c")], {}, at=T0)  # never answered: missed once due
    resolved_only = acme.apply_detection([spec("d")], {}, at=T0).opened[0].id
    acme.ack_incident(within, by="a", at=T0 + dt.timedelta(minutes=29))
    acme.ack_incident(late, by="a", at=T0 + dt.timedelta(minutes=31))
    acme.resolve_incident(resolved_only, by="a", at=T0 + dt.timedelta(minutes=10))
    # Another month and another client do not count.
    acme.apply_detection([spec("e")], {}, at=T0 + dt.timedelta(days=30))
    acme.apply_detection([IncidentSpec(**{**spec("f").__dict__, "client": "rival"})], {}, at=T0)

    before_due = compliance(acme, "acme", "2026-12", now=T0 + dt.timedelta(minutes=20))
    assert (before_due.total, before_due.within, before_due.missed, before_due.pending) == (4, 2, 1, 1)
    result = compliance(acme, "acme", "2026-12", now=T0 + dt.timedelta(hours=2))
    assert (result.total, result.within, result.missed, result.pending) == (4, 2, 2, 0)
    assert result.ratio == 0.5
    assert result.mean_seconds_to_ack == 30 * 60.0 and result.mean_seconds_to_resolve == 600.0
    assert compliance(acme, "acme", "2027-01", now=T0).total == 1


def sentryctl(url: str, home: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SENTRY_HOME": str(home), "SENTRY_DB_URL": url, "COLUMNS": "250"}
    done = subprocess.run([SENTRYCTL, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
    return done


def test_cli_lists_shows_acks_and_resolves_and_refuses_with_one_line(acme: Ledger, ledger_url: str, home: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    fresh = IncidentSpec(**{**spec().__dict__, "due_at": now + dt.timedelta(minutes=30)})
    iid = acme.apply_detection([fresh], {}, at=now).opened[0].id
    listed = json.loads(sentryctl(ledger_url, home, "incidents", "list", "--state", "open", "--json").stdout)
    assert [(i["id"], i["state"], i["occurrences"], i["response"]) for i in listed] == [(iid, "open", 1, "pending")]
    assert json.loads(sentryctl(ledger_url, home, "incidents", "list", "--state", "resolved", "--json").stdout) == []
    acked = sentryctl(ledger_url, home, "incidents", "ack", str(iid), "--by", "alice")
    assert f"incident {iid} acknowledged by alice" in acked.stdout
    refused = sentryctl(ledger_url, home, "incidents", "ack", str(iid), "--by", "bob", expect=1)
    assert refused.stderr.strip().splitlines() == [
        f"error: incident {iid} is acked; only an open incident can be acknowledged "
        f"(see 'sentryctl incidents show {iid}')"
    ]
    sentryctl(ledger_url, home, "incidents", "resolve", str(iid), "--by", "bob", "--note", "fixed")
    shown = json.loads(sentryctl(ledger_url, home, "incidents", "show", str(iid), "--json").stdout)
    assert [s["step"] for s in shown["timeline"]] == ["opened", "acked", "resolved"]
    assert (shown["acked_by"], shown["resolved_by"], shown["resolve_note"]) == ("alice", "bob", "fixed")
    assert shown["response"] == "within" and shown["seconds_to_ack"] >= 0
    text = sentryctl(ledger_url, home, "incidents", "show", str(iid)).stdout
    assert "resolved" in text and "fixed" in text
    assert sentryctl(ledger_url, home, "incidents", "list", "--state", "bogus", expect=2).returncode == 2
    assert "no incident 77" in sentryctl(ledger_url, home, "incidents", "ack", "77", expect=1).stderr
    month = now.strftime("%Y-%m")
    report = json.loads(
        sentryctl(ledger_url, home, "incidents", "compliance", "-c", "acme", "--month", month, "--json").stdout
    )
    assert (report["total"], report["within"], report["ratio"]) == (1, 1, 1.0)
    sentryctl(ledger_url, home, "incidents", "compliance", "-c", "acme", "--month", "2026-13", expect=2)


def test_an_upgraded_ledger_does_not_turn_its_past_into_incidents(ledger_url: str, home: Path) -> None:
    from orchestrator.incidents.engine import detect_pass
    from orchestrator.ledger import engine as ledger_engine
    from orchestrator.ledger.urls import resolve_url

    from .test_migration_0002 import migrate_to

    def halt(ledger: Ledger, uid: str) -> None:
        ledger.create_rollout(
            uid, release_version="1.5.0", track="hotfix", plan={}, clients=["acme"],
            hosts=[("acme", "web1", 0, "pending", "1.5.0", None)],
        )  # fmt: skip
        for state in ("running", "halted"):
            ledger.set_rollout_state(uid, state)

    migrate_to(ledger_url, home, "0004")
    resolved = resolve_url(ledger_url, home)
    old = Ledger(ledger_engine.create(resolved), resolved, "old@ci")  # not opened: opening would upgrade it
    try:
        old.add_client("acme", "enterprise", {})
        halt(old, "ro-1")  # history written by 0004's sentryctl
        past = old.events()[-1].seq
    finally:
        old.close()
    with Ledger.open(ledger_url, home, actor="tester@ci") as ledger:
        assert ledger.incident_watermarks() == {"events": past, "alerts": 0}
        detect_pass(ledger, T0)
        assert ledger.incidents() == []
        halt(ledger, "ro-2")
        detect_pass(ledger, T0)
        assert [i.title for i in ledger.incidents()] == ["rollout ro-2 halted"]
