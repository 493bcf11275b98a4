"""What a rollout reports as it goes: one event per wave, gate, host, rollback step and end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RolloutEvent:
    kind: str  # wave, gate, host, rollback, lock, done
    message: str
    wave: str | None = None
    client: str | None = None
    host: str | None = None
    ok: bool = True


EventSink = Callable[[RolloutEvent], None]
