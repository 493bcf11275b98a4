"""The audit's testinfra checks: product code, shipped in the package, one module per concern of the stack.

A check has a stable id (``<concern>.<name>``: waivers, reports and JUnit name it), a one-line description of
the control it verifies, the tier component that enables it, and a probe. A probe gets a testinfra host and the
host's :class:`~orchestrator.audit.expected.Expected` state and returns a :class:`Finding` that says what was
expected and what was found, in words an auditor can file. Probes only read: an audit changes nothing.

They are plain functions over testinfra's host API rather than pytest test modules, so that each result carries
structured expected/found values (not an assertion message) and an audit runs hosts in parallel without
pytest's global state.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import agent, baseline, firewall, ids
from .base import Check, Finding, Probe, compare, expect_file, file_facts, json_file, missing

__all__ = [
    "Check",
    "Finding",
    "Probe",
    "by_id",
    "compare",
    "expect_file",
    "file_facts",
    "json_file",
    "missing",
    "registry",
]


def registry() -> tuple[Check, ...]:
    checks = (*baseline.CHECKS, *firewall.CHECKS, *ids.CHECKS, *agent.CHECKS)
    ids_seen = [c.id for c in checks]
    assert len(ids_seen) == len(set(ids_seen)), "check ids must be unique"
    return checks


def by_id(ids: Iterable[str]) -> tuple[Check, ...]:
    known = {c.id: c for c in registry()}
    return tuple(known[i] for i in ids)
