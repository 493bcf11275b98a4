"""What the demo's steps share: the workspace, the lab, the ledger, the clients' inventories, and the story's
voice (every line goes through the progress callback, so the core prints nothing)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import OrchestratorError
from ..inventory import Inventory
from ..lab.manager import Lab
from ..lab.state import LabState
from ..ledger import Ledger
from ..rollout.execute import RolloutEvent
from ..settings import Settings
from .records import DemoError, DemoEvent, DemoReport, EventKind, Progress, StepTiming

if TYPE_CHECKING:
    from .collector import DemoCollector


class Stage:
    """The world the story plays in. Steps read what earlier steps set up (the lab's state, the inventories, the
    collector) and write what they find into :attr:`report`."""

    def __init__(
        self, settings: Settings, ws: Settings, lab_name: str, ledger: Ledger, on_progress: Progress, total: int
    ) -> None:
        self.settings = settings
        self.ws = ws
        self.lab = Lab(ws, lab_name)
        self.ledger = ledger
        self.emit = on_progress
        self.total = total
        self.report = DemoReport(workspace=ws.home, lab=lab_name, kept=False)
        self._step = ("", "", 0)
        self.lab_state: LabState | None = None
        self.collector: DemoCollector | None = None
        self.invs: dict[str, Inventory] = {}
        self.host_map: dict[str, tuple[str, str]] = {}  # "client/host" -> (lab host name, address)

    @property
    def state(self) -> LabState:
        """The lab's state, once the lab step brought it up."""
        if self.lab_state is None:
            raise DemoError("the demo's lab is not up: a step ran before the lab step")
        return self.lab_state

    def say(self, message: str, kind: EventKind = "info") -> None:
        name, _title, index = self._step
        self.emit(DemoEvent(kind, message, name or None, index, self.total))

    @contextmanager
    def step(self, index: int, name: str, title: str) -> Iterator[None]:
        """Step ``index`` of the story: announced, timed, and any core failure named as this step's."""
        self._step = (name, title, index)
        self.emit(DemoEvent("step", title, name, index, self.total))
        start = time.monotonic()
        try:
            yield
        except DemoError:
            raise
        except OrchestratorError as exc:
            raise DemoError(f"demo step {index} ({title}) failed: {exc.message}", hint=exc.hint) from exc
        seconds = time.monotonic() - start
        self.report.steps.append(StepTiming(name, title, seconds))
        self.emit(DemoEvent("done", title, name, index, self.total, seconds=seconds))

    def status(self, prefix: str) -> Callable[[str], None]:
        return lambda message: self.say(f"{prefix}: {message}", "status")

    def rollout_event(self, event: RolloutEvent) -> None:
        where = "/".join(x for x in (event.client, event.host) if x)
        self.say(f"{where}: {event.message}" if where else event.message, "info" if event.ok else "warn")
