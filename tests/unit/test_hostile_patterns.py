"""Every identifier pattern matches the whole string: a trailing newline passes a '$'-anchored pattern (Python's
'$' also matches before a final newline), and a value with one would reach a manifest, a key or a file."""

from __future__ import annotations

import re

import pytest

from orchestrator import fleet, releases
from orchestrator.collector import schema
from orchestrator.lab import state
from orchestrator.ledger import audits

PATTERNS: list[tuple[str, re.Pattern[str], str]] = [
    ("collector boot id", schema.BOOT_RE, "0" * 32),
    ("collector host", schema.HOST_RE, "game-1"),
    ("lab name", state.NAME_RE, "lab"),
    ("audit sha256", audits.SHA256_RE, "a" * 64),
    ("fleet duration", fleet.DURATION_RE, "1h"),
    ("training module", releases.MODULE_RE, "ops-2"),
    ("release sha256", releases.SHA256_RE, "a" * 64),
]


@pytest.mark.parametrize(("what", "pattern", "good"), PATTERNS, ids=[p[0] for p in PATTERNS])
def test_core_patterns_refuse_a_trailing_newline(what: str, pattern: re.Pattern[str], good: str) -> None:
    assert pattern.match(good), what
    assert pattern.match(good + "\n") is None, what
