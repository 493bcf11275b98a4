"""Detection against what a real collector stored: one attack of 500 alerts is one incident, a new one after
resolve, a silent host opens one (once), a halted rollout and a drifting audit open one; and two engines on one
PostgreSQL never open or merge twice."""

from __future__ import annotations

import datetime as dt
import threading
import time

from orchestrator.incidents.engine import DetectOptions, detect_pass
from orchestrator.ledger import Ledger

from ..collector.conftest import Collector, boot_id, record

# A Monday noon (UTC): inside the professional tier's support hours, so due times are plain.
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
SETTLE_S = 2.5
NO_SETTLE = DetectOptions(settle=dt.timedelta(0))


def attack(host: str, boot: str, first: int, n: int, ip: str = "198.51.100.7", **extra: object) -> list[dict]:
    return [
        record("alert", host, boot, first + i, rule="game-bruteforce", ip=ip, severity="critical", **extra)
        for i in range(n)
    ]


def ingest(collector: Collector, host: str, records: list[dict], per_batch: int = 100) -> None:
    for start in range(0, len(records), per_batch):
        assert collector.ingest(host, records[start : start + per_batch]).status == 200


def test_500_alerts_of_one_attack_are_one_incident_and_a_new_one_after_resolve(quiet_collector: Collector) -> None:
    collector = quiet_collector  # its own engine off: this test drives the passes
    boot = boot_id()
    ingest(collector, "game1", attack("game1", boot, 0, 300))
    ingest(collector, "game2", attack("game2", boot, 0, 200, ip="203.0.113.9"))  # the same attack, elsewhere
    ingest(collector, "game1", [record("alert", "game1", boot, 900, severity="high")])  # not critical
    with Ledger.open(collector.db_url, collector.home, actor="test") as ledger:
        result = detect_pass(ledger, NOW, NO_SETTLE)
        assert result is not None and len(result.opened) == 1 and not result.merged
        (incident,) = ledger.incidents("acme")
        assert (incident.kind, incident.occurrences, incident.hosts) == ("attack", 500, ("game1", "game2"))
        assert incident.due_at == NOW + dt.timedelta(minutes=120)  # professional: 2 h
        # Nothing new: nothing happens; more of the same attack: merged.
        assert detect_pass(ledger, NOW, NO_SETTLE) is not None
        assert [i.occurrences for i in ledger.incidents("acme")] == [500]
        ingest(collector, "game1", attack("game1", boot, 300, 20))
        assert len(detect_pass(ledger, NOW, NO_SETTLE).merged) == 1  # type: ignore[union-attr]
        assert [i.occurrences for i in ledger.incidents("acme")] == [520]
        ledger.resolve_incident(incident.id, by="alice", at=NOW)
        ingest(collector, "game1", attack("game1", boot, 320, 1))
        assert len(detect_pass(ledger, NOW, NO_SETTLE).opened) == 1  # type: ignore[union-attr]
        assert [(i.state, i.occurrences) for i in ledger.incidents("acme")] == [("open", 1), ("resolved", 520)]
        opened = [e for e in ledger.events("acme") if e.kind == "incident.opened"]
        assert [(e.actor, e.payload["occurrences"]) for e in opened] == [("collector", 500), ("collector", 1)]
        assert ledger.verify().ok


def test_a_silent_host_opens_one_incident_and_not_again_after_resolve(quiet_collector: Collector) -> None:
    collector = quiet_collector  # its own engine off: this test drives the passes
    # Silence is judged against the receive clock, so this test's clock is the real one.
    now = dt.datetime.now(dt.UTC)
    assert collector.ingest("game2", [record("heartbeat", "game2", boot_id(), 0)]).status == 200
    with Ledger.open(collector.db_url, collector.home, actor="test") as ledger:
        detect_pass(ledger, now, NO_SETTLE)
        assert ledger.incidents() == []  # online (by the real receive clock); game1 never seen: not silent
        collector.age("telemetry_heartbeats", 3 * 30 + 5, "host = 'game2'")  # professional: 30 s interval
        opened = detect_pass(ledger, now, NO_SETTLE)
        assert opened is not None and [(i.kind, i.hosts) for i in opened.opened] == [("silent_host", ("game2",))]
        for _ in range(2):
            assert detect_pass(ledger, now, NO_SETTLE) == type(opened)((), ())
        ledger.resolve_incident(opened.opened[0].id, by="bob", at=now)
        assert detect_pass(ledger, now, NO_SETTLE) == type(opened)((), ())  # the same silence: not reopened
        # The host comes back and falls silent again: a new silence, a new incident.
        assert collector.ingest("game2", [record("heartbeat", "game2", boot_id(), 0)]).status == 200
        collector.age("telemetry_heartbeats", 3 * 30 + 5, "host = 'game2'")
        assert len(detect_pass(ledger, now, NO_SETTLE).opened) == 1  # type: ignore[union-attr]


def test_a_halted_rollout_and_an_audit_with_drift_open_incidents(quiet_collector: Collector) -> None:
    collector = quiet_collector  # its own engine off: this test drives the passes
    with Ledger.open(collector.db_url, collector.home, actor="test") as ledger:
        ledger.create_rollout(
            "ro-1",
            release_version="1.5.0",
            track="hotfix",
            plan={"waves": [["acme/game1"]]},
            clients=["acme"],
            hosts=[("acme", "game1", 0, "pending", "1.5.0", None)],
        )
        for state in ("running", "halted"):
            ledger.set_rollout_state("ro-1", state)
        for uid in ("au-1", "au-2"):
            ledger.record_audit(
                uid,
                "rival",
                auditor="Ada",
                started_at=NOW,
                result="drift",
                hosts={"r1": "drift"},
                bundle_path="/x",
                bundle_sha256="0" * 64,
            )
        detect_pass(ledger, NOW, NO_SETTLE)
        got = {(i.client, i.kind): i for i in ledger.incidents()}
        assert set(got) == {("acme", "rollout_halted"), ("rival", "audit_drift")}
        assert got[("rival", "audit_drift")].occurrences == 2 and got[("rival", "audit_drift")].hosts == ("r1",)
        assert got[("acme", "rollout_halted")].title == "rollout ro-1 halted"


def test_two_engines_on_one_postgresql_open_once_and_count_every_alert_once(pg_db_url: str, tmp_path) -> None:
    from ..collector.conftest import free_port, prepare

    collector = prepare(tmp_path / "home", pg_db_url, free_port())
    collector.start()
    stop = threading.Event()
    errors: list[BaseException] = []

    def engine(name: str) -> None:
        try:
            with Ledger.open(pg_db_url, collector.home, actor=name) as ledger:
                while not stop.is_set():
                    detect_pass(ledger, NOW, DetectOptions(actor=name))
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=engine, args=(f"collector-{n}",)) for n in (1, 2)]
    try:
        for t in threads:
            t.start()
        boot, total = boot_id(), 0
        for first in range(0, 600, 20):
            ingest(collector, "game1", attack("game1", boot, first, 20))
            total += 20
        deadline = time.monotonic() + 60
        with Ledger.open(pg_db_url, collector.home, actor="test") as ledger:
            while time.monotonic() < deadline:
                found = ledger.incidents()
                if found and found[0].occurrences >= total:
                    break
                time.sleep(0.2)
            time.sleep(SETTLE_S)  # a few more passes of both engines over nothing new
            stop.set()
            for t in threads:
                t.join(30)
            assert not errors, errors
            (incident,) = ledger.incidents()
            assert incident.occurrences == total
            kinds = [e.kind for e in ledger.events("acme") if e.kind.startswith("incident.")]
            assert kinds.count("incident.opened") == 1
            steps = ledger.incident_steps(incident.id)
            assert sum(s.detail.get("occurrences", 0) for s in steps) == total
            # The collector process runs its own engine too: three engines, one incident, every alert once.
            assert {s.actor for s in steps} <= {"collector", "collector-1", "collector-2"}
    finally:
        stop.set()
        collector.stop()
