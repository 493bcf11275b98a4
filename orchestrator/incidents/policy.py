"""Per tier: the response target, the support hours and the escalation ladder (``orchestrator/data/incidents.yml``
with the tiers' ``support_hours``), and the pure timing rules built on them."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..inventory_schema import PAGE_TARGETS
from ..tiers import get_tier
from . import hours

DATA = Path(__file__).resolve().parent.parent / "data" / "incidents.yml"


@dataclass(frozen=True)
class LadderStep:
    """Page ``target`` (``primary``, ``second_line``) or, with ``breach``, record the breach; ``after`` the start."""

    index: int
    after: _dt.timedelta
    target: str | None
    breach: bool


@dataclass(frozen=True)
class Policy:
    tier: str
    target: _dt.timedelta
    hours: hours.SupportHours
    ladder: tuple[LadderStep, ...]

    def clock_start(self, opened_at: _dt.datetime) -> _dt.datetime:
        """When the response clock starts: at once for 24/7, else when the support hours next begin."""
        return self.hours.next_opening(opened_at)

    def due_at(self, opened_at: _dt.datetime) -> _dt.datetime:
        return self.clock_start(opened_at) + self.target

    def step_due(self, opened_at: _dt.datetime, step: LadderStep) -> _dt.datetime:
        """When ``step`` is due: its offset from the clock start, held to the support hours."""
        return self.hours.next_opening(self.clock_start(opened_at) + step.after)

    def due_steps(self, opened_at: _dt.datetime, now: _dt.datetime) -> list[LadderStep]:
        return [s for s in self.ladder if self.step_due(opened_at, s) <= now]


def _step(index: int, raw: Any, tier: str) -> LadderStep:
    if not isinstance(raw, dict) or not isinstance(raw.get("after_minutes"), int) or raw["after_minutes"] < 0:
        raise ConfigError(f"{DATA}: tier {tier}: ladder step {index + 1} needs after_minutes >= 0")
    target, breach = raw.get("page"), raw.get("breach", False)
    if (target is None) == (breach is not True) or (target is not None and target not in PAGE_TARGETS):
        raise ConfigError(
            f"{DATA}: tier {tier}: ladder step {index + 1} must be either page: one of {', '.join(PAGE_TARGETS)}"
            " or breach: true"
        )
    return LadderStep(index=index, after=_dt.timedelta(minutes=raw["after_minutes"]), target=target, breach=breach)


def parse_policies(data: Any) -> dict[str, Policy]:
    """Policies from the data file's content; the tiers' support hours come from the tiers."""
    if not isinstance(data, dict) or not isinstance(data.get("tiers"), dict):
        raise ConfigError(f"{DATA} must hold a mapping 'tiers'")
    result = {}
    for tier, spec in data["tiers"].items():
        if not isinstance(spec, dict) or not isinstance(spec.get("target_minutes"), int):
            raise ConfigError(f"{DATA}: tier {tier} needs target_minutes")
        ladder = tuple(_step(i, raw, tier) for i, raw in enumerate(spec.get("ladder") or []))
        if [s.after for s in ladder] != sorted(s.after for s in ladder):
            raise ConfigError(f"{DATA}: tier {tier}: ladder steps must be in time order")
        result[tier] = Policy(
            tier=tier,
            target=_dt.timedelta(minutes=spec["target_minutes"]),
            hours=hours.parse(get_tier(tier).support_hours),
            ladder=ladder,
        )
    return result


@cache
def load_policies() -> dict[str, Policy]:
    return parse_policies(yaml.safe_load(DATA.read_text(encoding="utf-8")))


def policy_for(tier: str) -> Policy:
    policies = load_policies()
    if tier not in policies:
        raise ConfigError(f"tier {tier!r} has no incident policy", hint=f"add it to {DATA}")
    return policies[tier]
