"""Rollouts go in as planned, move only along the state machine, record where each host stands, and link a
rollback to the rollout that caused it; every change has its events and the chain stays whole."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from orchestrator.ledger import (
    FINAL_ROLLOUT_STATES,
    NO_WAVE,
    ROLLOUT_TRANSITIONS,
    Ledger,
    LedgerError,
    RolloutHostSpec,
    RolloutRecord,
    canonical_json,
)

PLAN = {"release": "1.5.0", "waves": [["acme/web1"], ["acme/web2", "globex/db1"]], "gates": ["health", "smoke"]}
HOSTS: list[RolloutHostSpec] = [
    ("acme", "web1", 0, "pending", "1.5.0", "1.4.2"),
    ("acme", "web2", 1, "pending", "1.5.0", "1.4.2"),
    ("globex", "db1", 1, "pending", "1.5.0", None),
    ("globex", "db2", NO_WAVE, "deferred", "1.5.0", "1.4.0"),
]


@pytest.fixture
def clients(ledger: Ledger) -> Ledger:
    ledger.add_client("acme", "enterprise", {})
    ledger.add_client("globex", "essentials", {})
    ledger.add_client("initech", "professional", {})
    return ledger


def create(ledger: Ledger, uid: str = "ro-1", **changes: object) -> RolloutRecord:
    args: dict[str, object] = {
        "release_version": "1.5.0",
        "track": "hotfix",
        "plan": PLAN,
        "clients": ["acme", "globex"],
        "hosts": HOSTS,
    }
    args.update(changes)
    return ledger.create_rollout(uid, **args)  # type: ignore[arg-type]


def walk(ledger: Ledger, uid: str, *states: str) -> RolloutRecord:
    record = ledger.rollout(uid)
    assert record is not None
    for state in states:
        record = ledger.set_rollout_state(uid, state)
    return record


def test_create_and_read_back(clients: Ledger) -> None:
    created = create(clients, emergency_reason="CVE-2025-0001 exploited in the wild", actor="rm@ops")
    assert (created.uid, created.state, created.track, created.release_version) == (
        "ro-1",
        "planned",
        "hotfix",
        "1.5.0",
    )
    assert created.plan == PLAN
    assert created.clients == ("acme", "globex")
    assert created.emergency_reason == "CVE-2025-0001 exploited in the wild"
    assert (created.parent_uid, created.finished_at, created.detail, created.actor) == (None, None, {}, "rm@ops")
    assert created.created_at == created.updated_at
    assert created.created_at.tzinfo is not None
    assert not created.final
    # Hosts come back by wave (the ones in no wave first), client, host.
    assert [(h.wave, h.client, h.host, h.status, h.previous_version) for h in created.hosts] == [
        (NO_WAVE, "globex", "db2", "deferred", "1.4.0"),
        (0, "acme", "web1", "pending", "1.4.2"),
        (1, "acme", "web2", "pending", "1.4.2"),
        (1, "globex", "db1", "pending", None),
    ]
    assert clients.rollout("ro-1") == created
    assert clients.rollout("nope") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        created.state = "running"  # type: ignore[misc]

    # One rollout.created per client, each with its own hosts and a digest of the whole plan.
    events = [e for e in clients.events() if e.kind == "rollout.created"]
    assert [(e.client, e.subject, e.actor) for e in events] == [
        ("acme", "ro-1", "rm@ops"),
        ("globex", "ro-1", "rm@ops"),
    ]
    assert events[1].payload == {
        "release_version": "1.5.0",
        "track": "hotfix",
        "clients": ["acme", "globex"],
        "emergency_reason": "CVE-2025-0001 exploited in the wild",
        "parent_uid": None,
        "plan_sha256": hashlib.sha256(canonical_json(PLAN).encode()).hexdigest(),
        "hosts": {
            "db1": {"wave": 1, "status": "pending", "target_version": "1.5.0", "previous_version": None},
            "db2": {"wave": NO_WAVE, "status": "deferred", "target_version": "1.5.0", "previous_version": "1.4.0"},
        },
    }


def test_rollouts_lists_newest_first_and_filters_by_client(clients: Ledger) -> None:
    create(clients, "ro-1")
    create(clients, "ro-2", clients=["initech"], hosts=[("initech", "app1", 0, "pending", "1.5.0", None)])
    create(clients, "ro-3", clients=["globex"], hosts=[])
    create(clients, "ro-4", clients=["acme"], hosts=[])
    assert [r.uid for r in clients.rollouts()] == ["ro-4", "ro-3", "ro-2", "ro-1"]
    assert [r.uid for r in clients.rollouts(limit=2)] == ["ro-4", "ro-3"]
    assert [r.uid for r in clients.rollouts(client="acme")] == ["ro-4", "ro-1"]
    assert [r.uid for r in clients.rollouts(client="globex", limit=1)] == ["ro-3"]
    assert [r.uid for r in clients.rollouts(client="initech")] == ["ro-2"]
    # Membership is exact: no prefix, case or LIKE-wildcard matches.
    assert clients.rollouts(client="acm") == []
    assert clients.rollouts(client="ACME") == []
    assert clients.rollouts(client="%") == []
    assert clients.rollouts(client="nobody") == []
    assert clients.rollouts(client="acme")[1] == clients.rollout("ro-1")


def test_create_refuses_bad_input(clients: Ledger) -> None:
    create(clients, "ro-1")
    with pytest.raises(LedgerError, match="rollout 'ro-1' is already in the ledger"):
        create(clients, "ro-1")
    with pytest.raises(LedgerError, match="client 'nobody' is not in the ledger"):
        create(clients, "ro-2", clients=["acme", "nobody"], hosts=[])
    with pytest.raises(LedgerError, match="unknown release track 'beta'"):
        create(clients, "ro-2", track="beta")
    with pytest.raises(LedgerError, match="belongs to client 'initech', which the rollout does not name"):
        create(clients, "ro-2", hosts=[("initech", "app1", 0, "pending", "1.5.0", None)])
    with pytest.raises(LedgerError, match="host 'web1' of client 'acme' is listed twice"):
        create(clients, "ro-2", hosts=[HOSTS[0], HOSTS[0]])
    with pytest.raises(LedgerError, match="has wave -2"):
        create(clients, "ro-2", hosts=[("acme", "web1", -2, "pending", "1.5.0", None)])
    with pytest.raises(LedgerError, match="unknown status of host 'web1'"):
        create(clients, "ro-2", hosts=[("acme", "web1", 0, "done", "1.5.0", None)])
    with pytest.raises(LedgerError, match="the target version of host 'web1' in rollout ro-2 is required"):
        create(clients, "ro-2", hosts=[("acme", "web1", 0, "pending", "", None)])
    with pytest.raises(LedgerError, match="must be \\(client, host, wave"):
        create(clients, "ro-2", hosts=[("acme", "web1", 0)])
    with pytest.raises(LedgerError, match="the clients of rollout ro-2 is empty"):
        create(clients, "ro-2", clients=[], hosts=[])
    with pytest.raises(LedgerError, match="names 'acme' twice"):
        create(clients, "ro-2", clients=["acme", "acme"], hosts=[])
    with pytest.raises(LedgerError, match="not the string 'acme'"):
        create(clients, "ro-2", clients="acme", hosts=[])
    with pytest.raises(LedgerError, match="not JSON-serializable"):
        create(clients, "ro-2", plan={"when": object()})
    with pytest.raises(LedgerError, match="emergency reason of rollout ro-2"):
        create(clients, "ro-2", emergency_reason="  ")
    with pytest.raises(LedgerError, match="a rollout uid is required"):
        create(clients, "")
    # Nothing of the refused ones was written.
    assert [r.uid for r in clients.rollouts()] == ["ro-1"]
    assert [e.kind for e in clients.events()].count("rollout.created") == 2


def test_the_happy_path_and_resume(clients: Ledger) -> None:
    create(clients)
    running = clients.set_rollout_state("ro-1", "running", {"pid": 100})
    assert (running.state, running.finished_at, running.detail) == ("running", None, {"pid": 100})
    # A resume is running -> running; its detail is merged in.
    resumed = clients.set_rollout_state("ro-1", "running", {"pid": 200, "resumed": True})
    assert resumed.detail == {"pid": 200, "resumed": True}
    done = clients.set_rollout_state("ro-1", "completed")
    assert done.state == "completed"
    assert done.final
    assert done.finished_at is not None
    assert done.updated_at == done.finished_at

    changes = [(e.client, e.payload["from"], e.payload["to"]) for e in clients.events() if e.kind == "rollout.state"]
    assert changes == [
        ("acme", "planned", "running"),
        ("globex", "planned", "running"),
        ("acme", "running", "running"),
        ("globex", "running", "running"),
        ("acme", "running", "completed"),
        ("globex", "running", "completed"),
    ]
    assert clients.events()[-1].payload == {"from": "running", "to": "completed", "detail": {}}


# How to reach each state from planned.
PATHS: dict[str, tuple[str, ...]] = {
    "planned": (),
    "running": ("running",),
    "halted": ("running", "halted"),
    "rolling_back": ("running", "halted", "rolling_back"),
    "completed": ("running", "completed"),
    "completed_with_failures": ("running", "completed_with_failures"),
    "waiting_window": ("running", "waiting_window"),
    "rolled_back": ("running", "halted", "rolling_back", "rolled_back"),
    "aborted": ("aborted",),
    "failed": ("running", "halted", "rolling_back", "failed"),
}


def test_every_transition_is_allowed_or_refused_by_the_table(clients: Ledger) -> None:
    """Every pair of states: the allowed ones go through (final ones set finished_at), the others are refused with a
    one-line error naming from and to, and change nothing."""
    assert set(PATHS) == set(ROLLOUT_TRANSITIONS)
    count = 0

    def fresh(state: str) -> RolloutRecord:
        nonlocal count
        count += 1
        create(clients, f"ro-{count}", clients=["acme"], hosts=[])
        return walk(clients, f"ro-{count}", *PATHS[state])

    for state, allowed in ROLLOUT_TRANSITIONS.items():
        for target in sorted(allowed):
            before = fresh(state)
            after = clients.set_rollout_state(before.uid, target)
            assert after.state == target
            assert (after.finished_at is not None) == (target in FINAL_ROLLOUT_STATES) == after.final

        before = fresh(state)
        assert before.state == state
        events = len(clients.events())
        for target in sorted(ROLLOUT_TRANSITIONS.keys() - allowed):
            with pytest.raises(LedgerError) as info:
                clients.set_rollout_state(before.uid, target)
            assert info.value.message == f"rollout {before.uid} cannot go from {state} to {target}"
            expected_hint = (
                f"{state} is final" if not allowed else f"from {state} it can go to {', '.join(sorted(allowed))}"
            )
            assert info.value.hint == expected_hint
            assert "\n" not in str(info.value)
        assert clients.rollout(before.uid) == before
        assert len(clients.events()) == events
    assert clients.verify().ok


def test_state_mistakes_are_refused(clients: Ledger) -> None:
    with pytest.raises(LedgerError, match="rollout 'nope' is not in the ledger"):
        clients.set_rollout_state("nope", "running")
    create(clients)
    with pytest.raises(LedgerError, match="unknown rollout state 'paused'"):
        clients.set_rollout_state("ro-1", "paused")
    with pytest.raises(LedgerError, match="not JSON-serializable"):
        clients.set_rollout_state("ro-1", "running", {"x": {1, 2}})
    assert walk(clients, "ro-1").state == "planned"


def test_a_halt_keeps_the_gate_in_the_detail(clients: Ledger) -> None:
    create(clients)
    clients.set_rollout_state("ro-1", "running")
    halted = clients.set_rollout_state("ro-1", "halted", {"gate": "health", "wave": 0, "why": "web1: no answer"})
    assert halted.finished_at is None
    clients.set_rollout_state("ro-1", "rolling_back")
    rolled = clients.set_rollout_state("ro-1", "rolled_back", {"rolled_back": ["web1"]})
    assert rolled.detail == {"gate": "health", "wave": 0, "why": "web1: no answer", "rolled_back": ["web1"]}
    halt = next(e for e in clients.events(client="globex") if e.kind == "rollout.state" and e.payload["to"] == "halted")
    assert halt.payload["detail"] == {"gate": "health", "wave": 0, "why": "web1: no answer"}


def test_host_status_updates(clients: Ledger) -> None:
    create(clients)
    clients.set_rollout_state("ro-1", "running")
    updating = clients.set_rollout_host("ro-1", "acme", "web1", "updating", detail={"run": "run-1"})
    assert (updating.status, updating.detail, updating.wave, updating.target_version) == (
        "updating",
        {"run": "run-1"},
        0,
        "1.5.0",
    )
    # The detail is merged; the previous version learnt on the host replaces the planned one.
    healthy = clients.set_rollout_host(
        "ro-1", "acme", "web1", "healthy", detail={"health": "ok"}, previous_version="1.4.3"
    )
    assert (healthy.status, healthy.previous_version) == ("healthy", "1.4.3")
    assert healthy.detail == {"run": "run-1", "health": "ok"}
    assert healthy.updated_at > updating.updated_at
    record = clients.rollout("ro-1")
    assert record is not None
    assert record.host("acme", "web1") == healthy
    assert record.host("acme", "nope") is None
    assert record.updated_at == healthy.updated_at
    # Other hosts are untouched.
    assert record.host("acme", "web2") == create_host("acme", "web2", record)

    # Recording the same again changes nothing and appends nothing.
    events = len(clients.events())
    assert clients.set_rollout_host("ro-1", "acme", "web1", "healthy", detail={"health": "ok"}) == healthy
    assert len(clients.events()) == events

    last = clients.events()[-1]
    assert (last.kind, last.client, last.subject) == ("rollout.host", "acme", "web1")
    assert last.payload == {
        "rollout": "ro-1",
        "from": "updating",
        "status": "healthy",
        "detail": {"health": "ok"},
        "previous_version": "1.4.3",
    }

    with pytest.raises(LedgerError, match="unknown rollout host status 'done'"):
        clients.set_rollout_host("ro-1", "acme", "web1", "done")
    with pytest.raises(LedgerError, match="host 'web9' of client 'acme' is not in rollout ro-1"):
        clients.set_rollout_host("ro-1", "acme", "web9", "updating")
    with pytest.raises(LedgerError, match="host 'db1' of client 'acme' is not in rollout ro-1"):
        clients.set_rollout_host("ro-1", "acme", "db1", "updating")
    with pytest.raises(LedgerError, match="rollout 'nope' is not in the ledger"):
        clients.set_rollout_host("nope", "acme", "web1", "updating")

    clients.set_rollout_state("ro-1", "completed")
    with pytest.raises(LedgerError, match="rollout ro-1 is completed; its hosts can no longer change"):
        clients.set_rollout_host("ro-1", "acme", "web2", "updating")


def create_host(client: str, host: str, record: RolloutRecord) -> object:
    """The host as it was created (pending, empty detail): what an untouched host still looks like."""
    found = record.host(client, host)
    assert found is not None
    assert (found.status, found.detail, found.updated_at) == ("pending", {}, record.created_at)
    return found


def test_a_rollback_rollout_links_to_its_cause(clients: Ledger) -> None:
    create(clients)
    walk(clients, "ro-1", "running")
    clients.set_rollout_host("ro-1", "acme", "web1", "failed", detail={"why": "agent did not start"})
    walk(clients, "ro-1", "halted", "rolling_back", "failed")

    rollback = create(
        clients,
        "ro-1-rollback",
        release_version="1.4.2",
        clients=["acme"],
        hosts=[("acme", "web1", 0, "pending", "1.4.2", "1.5.0")],
        parent_uid="ro-1",
    )
    assert rollback.parent_uid == "ro-1"
    stored = clients.rollout("ro-1-rollback")
    assert stored is not None
    assert stored.parent_uid == "ro-1"
    assert clients.rollouts(client="acme")[0] == stored
    event = clients.events()[-1]
    assert (event.kind, event.subject, event.payload["parent_uid"]) == ("rollout.created", "ro-1-rollback", "ro-1")
    with pytest.raises(LedgerError, match="would roll back rollout 'ro-0', which is not in the ledger"):
        create(clients, "ro-2", parent_uid="ro-0")
    walk(clients, "ro-1-rollback", "running", "completed")
    assert clients.verify().ok


def test_removing_a_client_keeps_its_rollouts(clients: Ledger) -> None:
    create(clients)
    clients.remove_client("globex")
    assert [r.uid for r in clients.rollouts(client="globex")] == ["ro-1"]
    # State changes still reach every client of the rollout, live or not.
    assert clients.set_rollout_state("ro-1", "running").state == "running"


def test_everything_together_verifies(clients: Ledger) -> None:
    clients.sync_hosts("acme", [("web1", "10.0.0.1", 22), ("web2", "10.0.0.2", 22)])
    create(clients)
    clients.acquire_rollout_locks(
        ["acme", "globex"], "ro-1", holder_host="ctl", holder_pid=10, is_stale=lambda _: False
    )
    walk(clients, "ro-1", "running")
    for host in ("web1", "web2"):
        clients.set_rollout_host("ro-1", "acme", host, "updating")
        clients.set_host_release(
            "acme", host, stack_version="3", release_version="1.5.0", release_track="hotfix", run_uid=None
        )
        clients.set_rollout_host("ro-1", "acme", host, "healthy")
    clients.heartbeat_rollout_locks("ro-1")
    walk(clients, "ro-1", "completed")
    clients.release_rollout_locks("ro-1")
    clients.signoff_training("initech", "2.0.0", trainer="Ana Trainer", attendees=["Bo Ops"], unscheduled=True)
    report = clients.verify()
    assert report.ok, report.problems
    assert report.checked == len(clients.events())
