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
