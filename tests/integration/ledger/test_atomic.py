"""Every public write is all or nothing: state and events together, or neither, even if the process dies."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ledger import Ledger
from orchestrator.ledger import store as store_module


class Boom(Exception):
    pass


def fail_on_call(n: int, original: Any, action: Any) -> Any:
    """A stand-in for ``_Tx.append`` that does the real append ``n - 1`` times, then ``action()``."""
    calls = {"count": 0}

    def append(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["count"] += 1
        if calls["count"] >= n:
            action()
        return original(self, *args, **kwargs)

    return append


def raise_boom() -> None:
    raise Boom("crash in the middle of a transaction")


def test_an_exception_mid_transaction_leaves_nothing(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger.add_client("acme", "enterprise", {})
    before = ledger.events()

    # The third host's event fails after two hosts and their events were already written in the transaction.
    monkeypatch.setattr(store_module._Tx, "append", fail_on_call(3, store_module._Tx.append, raise_boom))
    with pytest.raises(Boom):
        ledger.sync_hosts("acme", [("web1", "10.0.0.1", 22), ("web2", "10.0.0.2", 22), ("web3", "10.0.0.3", 22)])
    monkeypatch.undo()

    assert ledger.hosts("acme", include_removed=True) == []
    assert ledger.events() == before
    assert ledger.verify().ok
    # The lock went with the transaction: the next write goes through and continues the chain.
    assert ledger.sync_hosts("acme", [("web1", "10.0.0.1", 22)]).added == ("web1",)
    assert [e.seq for e in ledger.events()] == [1, 2]


def test_a_failed_event_takes_its_state_change_with_it(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    # The client row is flushed before its event is hashed; the hash fails.
    def broken_hash(*args: Any, **kwargs: Any) -> str:
        raise Boom("hash failed")

    monkeypatch.setattr(store_module, "event_hash", broken_hash)
    with pytest.raises(Boom):
        ledger.add_client("acme", "enterprise", {})
    monkeypatch.undo()
    assert ledger.clients(include_removed=True) == []
    assert ledger.events() == []


def _die_mid_sync(url: str, home: str) -> None:
    with Ledger.open(url, Path(home)) as ledger:
        store_module._Tx.append = fail_on_call(2, store_module._Tx.append, lambda: os._exit(17))  # type: ignore[method-assign]
        ledger.sync_hosts("acme", [("web1", "10.0.0.1", 22), ("web2", "10.0.0.2", 22)])


def test_a_process_killed_mid_transaction_leaves_nothing(ledger: Ledger, ledger_url: str, home: Path) -> None:
    ledger.add_client("acme", "enterprise", {})
    child = multiprocessing.get_context("spawn").Process(target=_die_mid_sync, args=(ledger_url, str(home)))
    child.start()
    child.join(60)
    assert child.exitcode == 17

    assert ledger.hosts("acme", include_removed=True) == []
    assert [e.kind for e in ledger.events()] == ["client.created"]
    assert ledger.sync_hosts("acme", [("web1", "10.0.0.1", 22)]).added == ("web1",)
    assert ledger.verify().ok


def _two_client_rollout(ledger: Ledger, uid: str = "ro-1") -> None:
    ledger.create_rollout(
        uid,
        release_version="1.5.0",
        track="hotfix",
        plan={"waves": [["web1"], ["db1"]]},
        clients=["acme", "globex"],
        hosts=[("acme", "web1", 0, "pending", "1.5.0", None), ("globex", "db1", 1, "pending", "1.5.0", None)],
    )


def test_a_crash_mid_rollout_write_leaves_nothing(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger.add_client("acme", "enterprise", {})
    ledger.add_client("globex", "enterprise", {})
    before = ledger.events()

    # The second client's rollout.created fails after the rollout, its hosts and the first event were written.
    monkeypatch.setattr(store_module._Tx, "append", fail_on_call(2, store_module._Tx.append, raise_boom))
    with pytest.raises(Boom):
        _two_client_rollout(ledger)
    monkeypatch.undo()
    assert ledger.rollout("ro-1") is None
    assert ledger.rollouts() == []
    assert ledger.events() == before

    _two_client_rollout(ledger)
    created = ledger.rollout("ro-1")
    after_create = ledger.events()

    # A state change reaching only one of its two events is no state change at all.
    monkeypatch.setattr(store_module._Tx, "append", fail_on_call(2, store_module._Tx.append, raise_boom))
    with pytest.raises(Boom):
        ledger.set_rollout_state("ro-1", "running", {"pid": 1})
    monkeypatch.undo()
    assert ledger.rollout("ro-1") == created

    # Nor are half-taken locks: the second client's lock event fails after the first lock was written.
    monkeypatch.setattr(store_module._Tx, "append", fail_on_call(2, store_module._Tx.append, raise_boom))
    with pytest.raises(Boom):
        ledger.acquire_rollout_locks(
            ["acme", "globex"], "ro-1", holder_host="ctl", holder_pid=1, is_stale=lambda _: False
        )
    monkeypatch.undo()
    assert ledger.rollout_locks() == []

    # A sign-off whose event fails leaves no session behind.
    monkeypatch.setattr(store_module._Tx, "append", fail_on_call(1, store_module._Tx.append, raise_boom))
    with pytest.raises(Boom):
        ledger.signoff_training("acme", "2.0.0", trainer="Ana", attendees=["Bo"], unscheduled=True)
    monkeypatch.undo()
    assert ledger.trainings() == []

    assert ledger.events() == after_create
    assert ledger.verify().ok
    assert (
        ledger.acquire_rollout_locks(
            ["acme", "globex"], "ro-1", holder_host="ctl", holder_pid=1, is_stale=lambda _: False
        )
        == []
    )


def _die_mid_lock(url: str, home: str) -> None:
    with Ledger.open(url, Path(home)) as ledger:
        store_module._Tx.append = fail_on_call(2, store_module._Tx.append, lambda: os._exit(17))  # type: ignore[method-assign]
        ledger.acquire_rollout_locks(
            ["acme", "globex"], "ro-1", holder_host="ctl", holder_pid=os.getpid(), is_stale=lambda _: False
        )


def test_a_process_killed_while_locking_holds_nothing(ledger: Ledger, ledger_url: str, home: Path) -> None:
    ledger.add_client("acme", "enterprise", {})
    ledger.add_client("globex", "enterprise", {})
    _two_client_rollout(ledger)
    events = ledger.events()
    child = multiprocessing.get_context("spawn").Process(target=_die_mid_lock, args=(ledger_url, str(home)))
    child.start()
    child.join(60)
    assert child.exitcode == 17

    # No lock to recover: the killed transaction took its lock rows with it.
    assert ledger.rollout_locks() == []
    assert ledger.events() == events
    assert (
        ledger.acquire_rollout_locks(
            ["acme", "globex"], "ro-1", holder_host="ctl", holder_pid=2, is_stale=lambda _: False
        )
        == []
    )
    assert ledger.verify().ok
