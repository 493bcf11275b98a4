"""What the demo tells and hands back: the lines of its story as they happen (:class:`DemoEvent`), the report at
the end (:class:`DemoReport`), and the one error it raises (:class:`DemoError`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import OrchestratorError

EventKind = Literal["step", "info", "ok", "warn", "status", "done"]


@dataclass(frozen=True)
class DemoEvent:
    """One line of the story. ``step`` starts step ``index`` (1-based) of ``total``; ``done`` ends it; ``status``
    is transient (what runs right now, e.g. the current task), the others are lines to keep."""

    kind: EventKind
    message: str
    step: str | None = None
    index: int = 0
    total: int = 0
    seconds: float | None = None


Progress = Callable[[DemoEvent], None]


class DemoError(OrchestratorError):
    """Raised when a demo step fails or finds the world other than the story says."""


@dataclass
class StepTiming:
    step: str
    title: str
    seconds: float


@dataclass
class DemoReport:
    workspace: Path
    lab: str
    kept: bool
    total_seconds: float = 0.0
    steps: list[StepTiming] = field(default_factory=list)
    locations: dict[str, str] = field(default_factory=dict)
    audits: dict[str, dict[str, Any]] = field(default_factory=dict)
    explore: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "lab": self.lab,
            "kept": self.kept,
            "total_seconds": round(self.total_seconds, 1),
            "steps": [{"step": s.step, "title": s.title, "seconds": round(s.seconds, 1)} for s in self.steps],
            "locations": self.locations,
            "audits": self.audits,
            "explore": self.explore,
        }
