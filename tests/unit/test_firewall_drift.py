"""The firewall's live-drift comparison (roles/sentry_firewall/files/sentry-firewall-drift.py): the order nft lists
declarations in is no drift (a set deleted and re-created live is listed last), the order of a chain's rules is."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "sentry_firewall" / "files" / "sentry-firewall-drift.py"


def drift() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sentry_firewall_drift", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHAIN = {"chain": {"family": "inet", "table": "sentry", "name": "input"}}
SET = {"set": {"family": "inet", "table": "sentry", "name": "banned_v4", "type": "ipv4_addr"}}


def rule(expr: str) -> dict[str, object]:
    return {"rule": {"family": "inet", "table": "sentry", "chain": "input", "expr": [expr]}}


def test_declaration_order_is_no_drift_but_rule_order_and_a_missing_rule_are() -> None:
    d = drift()
    want = [CHAIN, SET, rule("ct state established accept"), rule("drop")]
    assert d.canonical([SET, CHAIN, *want[2:]]) == d.canonical(want)
    assert d.canonical([CHAIN, SET, rule("drop"), rule("ct state established accept")]) != d.canonical(want)
    assert d.canonical(want[:3]) != d.canonical(want)
