"""Live progress for playbook runs: one line per play, a spinner on the current task, every failure as it
happens, and a per-host summary at the end. Ctrl-C cancels at the next play boundary; twice stops at once."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from rich.console import Console
from rich.status import Status
from rich.table import Table

from ..runner import Cancellation, RunEvent, RunResult


class RunProgress:
    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.cancel = Cancellation()
        self.counts: dict[str, Counter[str]] = {}
        self._status: Status | None = None
        self._task = ""

    def on_event(self, event: RunEvent) -> None:
        if event.kind == "play_start":
            self.console.print(f"[bold]-->[/bold] play: {event.play}")
        elif event.kind == "task_start":
            self._task = event.task or ""
            if self._status is not None:
                self._status.update(f"{self.title}: {self._task}")
        elif event.host is not None:
            self.counts.setdefault(event.host, Counter())[event.kind] += 1
            if event.kind in ("failed", "unreachable"):
                msg = (event.message or "").strip().splitlines()
                detail = f": {msg[0][:200]}" if msg else ""
                self.console.print(f"    [red]{event.kind}[/red] {event.host} | {event.task}{detail}")

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self.cancel.requested:
            self.console.print("[yellow]stopping now[/yellow]")
            self.cancel.request(force=True)
        else:
            self.console.print("[yellow]cancelling after the current play (Ctrl-C again to stop now)[/yellow]")
            self.cancel.request()

    @contextmanager
    def running(self) -> Iterator[RunProgress]:
        previous: Any = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            with self.console.status(self.title) as status:
                self._status = status
                yield self
        finally:
            self._status = None
            signal.signal(signal.SIGINT, previous)


def result_table(result: RunResult) -> Table:
    table = Table("host", "status", "ok", "changed", "failed", "unreachable", "rescued", title=f"run {result.run_id}")
    colour = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red"}
    for name, o in sorted(result.hosts.items()):
        table.add_row(
            name,
            f"[{colour[o.status]}]{o.status}[/]",
            str(o.ok),
            str(o.changed),
            str(o.failed),
            str(o.unreachable),
            str(o.rescued),
        )
    return table
