"""Service tiers, read from the same data the site playbook applies (playbooks/vars/tiers.yml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, InventoryError
from .paths import project_root


@dataclass(frozen=True)
class Tier:
    name: str
    components: tuple[str, ...]
    support_hours: str
    heartbeat_interval_seconds: int

    @property
    def around_the_clock(self) -> bool:
        """24/7 tiers are never held back by a maintenance window."""
        return self.support_hours.strip() == "24/7"


def _parse(data: Any, source: Path) -> dict[str, Tier]:
    try:
        raw = data["sentry_tiers"]
        return {
            name: Tier(
                name=name,
                components=tuple(c for c, on in spec["components"].items() if on),
                support_hours=str(spec["support_hours"]),
                heartbeat_interval_seconds=int(spec["heartbeat_interval_seconds"]),
            )
            for name, spec in raw.items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{source} does not define tiers as expected: {exc!r}") from exc


def _source(path: Path | None) -> Path:
    return path or project_root() / "playbooks" / "vars" / "tiers.yml"


@cache
def _raw(path: Path | None = None) -> Any:
    return yaml.safe_load(_source(path).read_text(encoding="utf-8"))


@cache
def load_tiers(path: Path | None = None) -> dict[str, Tier]:
    return _parse(_raw(path), _source(path))


def tier_definition(name: str) -> dict[str, Any]:
    """The tier exactly as the playbook reads it (detection thresholds, fail2ban settings, ...)."""
    get_tier(name)
    return dict(_raw()["sentry_tiers"][name])


def get_tier(name: str) -> Tier:
    tiers = load_tiers()
    if name not in tiers:
        raise InventoryError(f"unknown tier {name!r}", hint=f"choose one of: {', '.join(sorted(tiers))}")
    return tiers[name]
