"""Detection rules (``rules/rules.json`` of a release): loading, validation, per-config overrides.

Format::

    {"version": "2026.11.1",
     "rules": [{"id": "game-bruteforce", "source": "game",
                "pattern": "LOGIN FAILED user=\\\\S+ ip=(?P<ip>[0-9a-fA-F:.]+)\\\\s*$",
                "threshold": 5, "window_seconds": 60, "ban_seconds": 600,
                "description": "optional free text", "severity": "critical"}]}

``pattern`` is a Python regular expression searched in each line of the named source; it must define a named
group ``ip``. ``threshold`` matches from one address within ``window_seconds`` ban it for ``ban_seconds``.
Anchor a pattern to the field it means: the parts of a log line an attacker controls (a user name) come before
the address the service writes, so the shipped rules take the address that ends the line (``$``), and a user
name such as ``x ip=1.2.3.4`` cannot make the agent ban an address that never sent anything.
The config's ``rule_overrides`` may replace the three numbers per rule (tiers tune detection this way); an
override naming a rule that does not exist is an error, so a typo cannot silently disable tuning.
``severity`` (optional: ``low``, ``medium`` the default, ``high``, ``critical``) is carried in each alert of the
rule; the collector opens an incident (and pages) for a ``critical`` one.

Fault-injection hook: a top-level ``"self_test": "fail"`` makes an otherwise valid release start normally
but report itself broken: ``/healthz`` answers HTTP 503 with ``"status": "failing"``. Release tests use it to
build a deliberately bad release without touching the host's environment. ``"self_test": "pass"`` (or no
key) is the normal state; any other value is a validation error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import RuleOverride, Source

__all__ = ["Rule", "RuleSet", "RulesError", "load_rules", "parse_rules"]

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_RULE_KEYS = ("id", "source", "pattern", "threshold", "window_seconds", "ban_seconds", "description", "severity")
SEVERITIES = ("low", "medium", "high", "critical")
_TOP_KEYS = ("version", "rules", "self_test", "description")
_LIMITS = {"threshold": 1_000_000, "window_seconds": 7 * 86400, "ban_seconds": 365 * 86400}


class RulesError(ValueError):
    """The rules file is invalid; the message is one line naming the rule and key."""


@dataclass(frozen=True)
class Rule:
    id: str
    source: str
    pattern: re.Pattern[str]
    threshold: int
    window_seconds: int
    ban_seconds: int
    severity: str = "medium"


@dataclass(frozen=True)
class RuleSet:
    version: str
    rules: tuple[Rule, ...]
    self_test_fail: bool = False

    def split(self, sources: Iterable[Source]) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
        """(active, inactive): a rule is active when its source is configured on this host."""
        names = {s.name for s in sources}
        active = tuple(r for r in self.rules if r.source in names)
        inactive = tuple(r for r in self.rules if r.source not in names)
        return active, inactive


def load_rules(path: Path, overrides: Mapping[str, RuleOverride] | None = None) -> RuleSet:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read rules {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RulesError(f"rules {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    return parse_rules(data, overrides)


def parse_rules(data: object, overrides: Mapping[str, RuleOverride] | None = None) -> RuleSet:
    if not isinstance(data, dict):
        raise RulesError("rules file must be a JSON object")
    extra = sorted(set(data) - set(_TOP_KEYS))
    if extra:
        raise RulesError(f"{extra[0]}: unknown top-level key (known keys: {', '.join(_TOP_KEYS)})")
    version = data.get("version")
    if not isinstance(version, str) or not version.strip() or not version.isprintable():
        raise RulesError(f"version: must be a non-empty string, got {version!r}")
    self_test = data.get("self_test", "pass")
    if self_test not in ("pass", "fail"):
        raise RulesError(f"self_test: must be 'pass' or 'fail', got {self_test!r}")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RulesError("rules: must be a non-empty list")

    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(i, raw)
        if rule.id in seen:
            raise RulesError(f"rules[{i}].id: duplicate rule id {rule.id!r}")
        seen.add(rule.id)
        rules.append(rule)

    overrides = overrides or {}
    unknown = sorted(set(overrides) - seen)
    if unknown:
        raise RulesError(f"rule_overrides.{unknown[0]}: no such rule (rules: {', '.join(sorted(seen))})")
    rules = [_apply_override(rule, overrides.get(rule.id)) for rule in rules]
    return RuleSet(version=version, rules=tuple(rules), self_test_fail=self_test == "fail")


def _parse_rule(index: int, raw: object) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: must be an object")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _ID_RE.match(rule_id):
        raise RulesError(f"{where}.id: must match {_ID_RE.pattern}, got {rule_id!r}")
    where = f"rule {rule_id}"
    extra = sorted(set(raw) - set(_RULE_KEYS))
    if extra:
        raise RulesError(f"{where}: {extra[0]}: unknown key (known keys: {', '.join(_RULE_KEYS)})")
    source = raw.get("source")
    if not isinstance(source, str) or not source:
        raise RulesError(f"{where}: source: must be a non-empty string, got {source!r}")
    pattern_text = raw.get("pattern")
    if not isinstance(pattern_text, str) or not pattern_text:
        raise RulesError(f"{where}: pattern: must be a non-empty string")
    try:
        pattern = re.compile(pattern_text)
    except re.error as exc:
        raise RulesError(f"{where}: pattern: does not compile: {exc}") from None
    if "ip" not in pattern.groupindex:
        raise RulesError(f"{where}: pattern: must define a named group (?P<ip>...)")
    numbers = {key: _positive_int(where, key, raw.get(key)) for key in _LIMITS}
    severity = raw.get("severity", "medium")
    if severity not in SEVERITIES:
        raise RulesError(f"{where}: severity: must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    return Rule(id=rule_id, source=source, pattern=pattern, severity=severity, **numbers)


def _positive_int(where: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RulesError(f"{where}: {key}: must be a positive integer, got {value!r}")
    if not 1 <= value <= _LIMITS[key]:
        raise RulesError(f"{where}: {key}: must be between 1 and {_LIMITS[key]}, got {value}")
    return value


def _apply_override(rule: Rule, override: RuleOverride | None) -> Rule:
    if override is None:
        return rule
    values = {
        "threshold": override.threshold or rule.threshold,
        "window_seconds": override.window_seconds or rule.window_seconds,
        "ban_seconds": override.ban_seconds or rule.ban_seconds,
    }
    for key, value in values.items():
        if value > _LIMITS[key]:
            raise RulesError(f"rule_overrides.{rule.id}.{key}: must be at most {_LIMITS[key]}, got {value}")
    return Rule(id=rule.id, source=rule.source, pattern=rule.pattern, severity=rule.severity, **values)
