"""Clients, hosts, runs and releases go in and come back as records, with an event for every change."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator.ledger import HostResult, Ledger, LedgerError

Sql = Callable[..., list[Any]]


def kinds(ledger: Ledger) -> list[str]:
    return [e.kind for e in ledger.events()]


def test_client_round_trip(ledger: Ledger) -> None:
    created = ledger.add_client("acme", "enterprise", {"window": "sun 02:00", "contacts": ["ops@acme.test"]})
    assert created.name == "acme"
    assert created.tier == "enterprise"
    assert created.live
    assert created.created_at.tzinfo is not None
    assert ledger.client("acme") == created
    assert ledger.client("nobody") is None
    assert [c.name for c in ledger.clients()] == ["acme"]
    event = ledger.events()[-1]
    assert (event.kind, event.client, event.actor) == ("client.created", "acme", "tester@ci")
    assert event.payload == {"tier": "enterprise", "meta": {"window": "sun 02:00", "contacts": ["ops@acme.test"]}}
    with pytest.raises(dataclasses.FrozenInstanceError):
        created.tier = "free"  # type: ignore[misc]


def test_a_live_client_cannot_be_added_twice(ledger: Ledger) -> None:
    ledger.add_client("acme", "essentials", {})
    with pytest.raises(LedgerError, match="already in the ledger"):
        ledger.add_client("acme", "enterprise", {})
    assert kinds(ledger) == ["client.created"]


def test_removal_keeps_history_and_frees_the_name(ledger: Ledger) -> None:
    first = ledger.add_client("acme", "essentials", {})
    ledger.sync_hosts("acme", [("web1", "10.0.0.1", 22)])
    removed = ledger.remove_client("acme", actor="offboarder@ops")
    assert removed.removed_at is not None
    assert ledger.client("acme") is None
    assert ledger.clients() == []

    second = ledger.add_client("acme", "enterprise", {})
    assert second.id != first.id
    assert second.hosts == ()
    history = ledger.clients(include_removed=True)
    assert [(c.id, c.tier, c.live) for c in history] == [
        (first.id, "essentials", False),
        (second.id, "enterprise", True),
    ]
    assert kinds(ledger) == ["client.created", "host.added", "client.removed", "client.created"]
    removal = ledger.events()[2]
    assert (removal.actor, removal.payload) == ("offboarder@ops", {"hosts": ["web1"]})
    with pytest.raises(LedgerError, match="not in the ledger"):
        ledger.remove_client("nobody")


def test_sync_hosts_adds_updates_and_removes(ledger: Ledger) -> None:
    ledger.add_client("acme", "professional", {})
    first = ledger.sync_hosts("acme", [("web1", "10.0.0.1", 22), ("web2", "10.0.0.2", 22), ("db1", "10.0.0.9", 22)])
    assert first.added == ("db1", "web1", "web2")
    again = ledger.sync_hosts("acme", [("web1", "10.0.0.1", 22), ("web2", "10.0.0.2", 22), ("db1", "10.0.0.9", 22)])
    assert not again.changed

    second = ledger.sync_hosts(
        "acme", [("web1", "10.0.0.11", 22), ("web2", "10.0.0.2", 2222), ("web3", "10.0.0.3", 22)]
    )
    assert (second.added, second.updated, second.removed) == (("web3",), ("web1", "web2"), ("db1",))
    client = ledger.client("acme")
    assert client is not None
    assert [(h.name, h.address, h.port) for h in client.hosts] == [
        ("web1", "10.0.0.11", 22),
        ("web2", "10.0.0.2", 2222),
        ("web3", "10.0.0.3", 22),
    ]
    everything = ledger.hosts("acme", include_removed=True)
    assert [(h.name, h.removed_at is not None) for h in everything] == [
        ("db1", True),
        ("web1", False),
        ("web2", False),
        ("web3", False),
    ]

    events = ledger.events(since_seq=4)
    assert [(e.kind, e.subject) for e in events] == [
        ("host.removed", "db1"),
        ("host.updated", "web1"),
        ("host.updated", "web2"),
        ("host.added", "web3"),
    ]
    assert events[1].payload == {"address": "10.0.0.11", "port": 22, "previous": {"address": "10.0.0.1", "port": 22}}

    # A host that comes back is a new host: its old row stays removed.
    ledger.sync_hosts(
        "acme",
        [("web1", "10.0.0.11", 22), ("web2", "10.0.0.2", 2222), ("web3", "10.0.0.3", 22), ("db1", "10.0.0.9", 22)],
    )
    assert [h.name for h in ledger.hosts("acme", include_removed=True)].count("db1") == 2


def test_sync_hosts_refuses_bad_input(ledger: Ledger) -> None:
    ledger.add_client("acme", "professional", {})
    with pytest.raises(LedgerError, match="listed twice"):
        ledger.sync_hosts("acme", [("web1", "a", 22), ("web1", "b", 22)])
    with pytest.raises(LedgerError, match="valid port"):
        ledger.sync_hosts("acme", [("web1", "a", 0)])
    with pytest.raises(LedgerError, match="not in the ledger"):
        ledger.sync_hosts("nobody", [])


def test_runs_round_trip(ledger: Ledger) -> None:
    ledger.add_client("acme", "professional", {})
    ledger.add_client("globex", "essentials", {})
    run = ledger.start_run("exec", "acme", {"command": "uptime"}, uid="20250101-exec-abc")
    assert (run.uid, run.status, run.finished_at, run.hosts) == ("20250101-exec-abc", "running", None, ())
    results = {
        "web1": HostResult("ok", 0, {"stdout": " 10:00 up 3 days", "stderr": ""}),
        "web2": HostResult("unreachable"),
    }
    done = ledger.finish_run(run.uid, "failed", results)
    assert done.status == "failed"
    assert done.finished_at is not None
    assert done.host_results() == results
    ledger.start_run("provision", "globex", {})
    ledger.start_run("lab", None, {})

    assert [r.kind for r in ledger.runs()] == ["lab", "provision", "exec"]
    (stored,) = ledger.runs(client="acme")
    assert stored == done
    assert stored.summary == {"command": "uptime"}
    assert [r.client for r in ledger.runs(kind="provision")] == ["globex"]
    assert len(ledger.runs(limit=2)) == 2

    finished = ledger.events(client="acme")[-1]
    assert (finished.kind, finished.subject) == ("run.finished", run.uid)
    assert finished.payload == {
        "status": "failed",
        "hosts": {"web1": {"status": "ok", "rc": 0}, "web2": {"status": "unreachable", "rc": None}},
    }


def test_run_mistakes_are_refused(ledger: Ledger) -> None:
    ledger.add_client("acme", "professional", {})
    run = ledger.start_run("exec", "acme", {}, uid="r1")
    with pytest.raises(LedgerError, match="already in the ledger"):
        ledger.start_run("exec", "acme", {}, uid="r1")
    with pytest.raises(LedgerError, match="cannot finish as 'running'"):
        ledger.finish_run("r1", "running", {})
    ledger.finish_run(run.uid, "succeeded", {})
    with pytest.raises(LedgerError, match="already finished"):
        ledger.finish_run("r1", "failed", {})
    with pytest.raises(LedgerError, match="run 'nope' is not in the ledger"):
        ledger.finish_run("nope", "failed", {})
    with pytest.raises(LedgerError, match="client 'nobody'"):
        ledger.start_run("exec", "nobody", {})
    with pytest.raises(LedgerError, match="not JSON-serializable"):
        ledger.start_run("exec", "acme", {"when": object()})


def test_host_release_moves_the_old_version_to_previous(ledger: Ledger) -> None:
    ledger.add_client("acme", "enterprise", {})
    ledger.sync_hosts("acme", [("web1", "10.0.0.1", 22), ("web2", "10.0.0.2", 22)])
    run = ledger.start_run("rollout", "acme", {"release": "1.4.2"})
    first = ledger.set_host_release(
        "acme", "web1", stack_version="3", release_version="1.4.1", release_track="feature", run_uid=None
    )
    assert first.previous_release_version is None
    second = ledger.set_host_release(
        "acme", "web1", stack_version="3", release_version="1.4.2", release_track="hotfix", run_uid=run.uid
    )
    assert (second.release_version, second.previous_release_version, second.run_uid) == ("1.4.2", "1.4.1", run.uid)
    # Recording what is already recorded changes nothing.
    before = len(ledger.events())
    same = ledger.set_host_release(
        "acme", "web1", stack_version="3", release_version="1.4.2", release_track="hotfix", run_uid=None
    )
    assert same == second
    assert len(ledger.events()) == before
    # A new stack under the same release keeps the previous release intact.
    restacked = ledger.set_host_release(
        "acme", "web1", stack_version="4", release_version="1.4.2", release_track="hotfix", run_uid=run.uid
    )
    assert restacked.previous_release_version == "1.4.1"

    assert ledger.host_releases("acme") == [restacked]
    event = ledger.events()[-1]
    assert (event.kind, event.subject, event.payload["previous_release_version"]) == (
        "host.release_set",
        "web1",
        "1.4.1",
    )

    with pytest.raises(LedgerError, match="unknown release track"):
        ledger.set_host_release(
            "acme", "web1", stack_version="4", release_version="2", release_track="beta", run_uid=None
        )
    with pytest.raises(LedgerError, match="host 'web9'"):
        ledger.set_host_release(
            "acme", "web9", stack_version="4", release_version="2", release_track="hotfix", run_uid=None
        )
    with pytest.raises(LedgerError, match="run 'nope'"):
        ledger.set_host_release(
            "acme", "web2", stack_version="4", release_version="2", release_track="hotfix", run_uid="nope"
        )


def test_removed_hosts_drop_out_of_host_releases(ledger: Ledger) -> None:
    ledger.add_client("acme", "enterprise", {})
    ledger.sync_hosts("acme", [("web1", "10.0.0.1", 22), ("web2", "10.0.0.2", 22)])
    for host in ("web1", "web2"):
        ledger.set_host_release(
            "acme", host, stack_version="3", release_version="1.0", release_track="hotfix", run_uid=None
        )
    ledger.sync_hosts("acme", [("web2", "10.0.0.2", 22)])
    assert [r.host for r in ledger.host_releases("acme")] == ["web2"]


def test_events_filter_and_page(ledger: Ledger) -> None:
    for i in range(5):
        ledger.append_event("note.added", "acme" if i % 2 == 0 else "globex", f"n{i}", {"i": i})
    assert [e.seq for e in ledger.events()] == [1, 2, 3, 4, 5]
    assert [e.seq for e in ledger.events(limit=2)] == [4, 5]
    assert [e.seq for e in ledger.events(since_seq=1, limit=2)] == [2, 3]
    assert [e.seq for e in ledger.events(client="acme")] == [1, 3, 5]
    assert [e.seq for e in ledger.events(client="acme", limit=1)] == [5]
    event = ledger.events()[0]
    assert event.prev_hash == "0" * 64
    assert event.timestamp.tzinfo is not None
    assert ledger.events()[1].prev_hash == event.hash


def test_actor_defaults_to_the_environment(ledger_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_ACTOR", "ci-bot")
    with Ledger.open(ledger_url, tmp_path / "home") as ledger:
        assert ledger.append_event("note.added", None, None, {}).actor == "ci-bot"
        assert ledger.append_event("note.added", None, None, {}, actor="ana").actor == "ana"
