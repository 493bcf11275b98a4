"""Two processes appending at once never share a seq or fork the chain, and both may open a fresh database."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from orchestrator.ledger import Ledger

PER_WRITER = 100


def _append_many(url: str, home: str, who: str, go: Any) -> None:
    go.wait(30)
    # Opening is part of the race: both writers may find the database empty and try to migrate it.
    with Ledger.open(url, Path(home), actor=who) as ledger:
        for i in range(PER_WRITER):
            ledger.append_event("test.appended", None, who, {"i": i})


def test_two_processes_append_without_forking_the_chain(ledger_url: str, home: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    writers = [ctx.Process(target=_append_many, args=(ledger_url, str(home), who, go)) for who in ("alpha", "beta")]
    for writer in writers:
        writer.start()
    go.set()
    for writer in writers:
        writer.join(120)
    assert [w.exitcode for w in writers] == [0, 0]

    with Ledger.open(ledger_url, home) as ledger:
        events = ledger.events()
        assert [e.seq for e in events] == list(range(1, 2 * PER_WRITER + 1))
        for who in ("alpha", "beta"):
            assert [e.payload["i"] for e in events if e.subject == who] == list(range(PER_WRITER))
        report = ledger.verify()
        assert report.ok, report.problems
        assert report.checked == 2 * PER_WRITER
