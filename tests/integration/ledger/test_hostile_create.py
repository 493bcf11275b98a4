"""Creating a ledger is explicit: a database that holds none is refused unless creation was asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.ledger import Ledger
from orchestrator.ledger.errors import LedgerError


def test_open_without_create_refuses_an_empty_database(ledger_url: str, home: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger exists at") as exc:
        Ledger.open(ledger_url, home, create=False)
    assert "ledger init" in str(exc.value) and "\n" not in str(exc.value)
    with Ledger.open(ledger_url, home, create=True) as created:
        created.append_event("test.created", None, None, {})
    with Ledger.open(ledger_url, home, create=False) as reopened:
        assert reopened.verify().ok and reopened.verify().checked == 1
