"""What every audit check is made of: the check record, its finding, and the probes' shared helpers."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..expected import Expected


@dataclass(frozen=True)
class Finding:
    ok: bool
    expected: str
    found: str


Probe = Callable[[Any, Expected], Finding]


@dataclass(frozen=True)
class Check:
    id: str
    description: str
    component: str  # baseline, firewall, ids or agent: the check applies when the host's tier has it
    probe: Probe

    @property
    def concern(self) -> str:
        return self.id.split(".", 1)[0]

    def applies(self, expected: Expected) -> bool:
        return self.component in expected.components


def compare(expected: Mapping[str, Any], found: Mapping[str, Any]) -> Finding:
    """A finding over named values: on a mismatch, only the values that differ are shown."""
    wrong = [k for k in expected if expected[k] != found.get(k)]
    keys = wrong or list(expected)
    return Finding(
        ok=not wrong,
        expected=", ".join(f"{k}={_show(expected[k])}" for k in keys),
        found=", ".join(f"{k}={_show(found.get(k))}" for k in keys),
    )


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, frozenset, set)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if value is None:
        return "(none)"
    return str(value)


def file_facts(host: Any, path: str) -> dict[str, Any]:
    """Owner, group and mode of a file, or ``exists=no``; one command, whatever the file."""
    out = host.run(f"stat -c '%U %G %a' {path}")
    if out.rc != 0:
        return {"exists": False}
    user, group, mode = out.stdout.split()
    return {"exists": True, "owner": f"{user}:{group}", "mode": f"{int(mode, 8):04o}"}


def json_file(host: Any, path: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A JSON file's owner/group/mode and content: None when it does not exist, {} when it is not JSON."""
    facts = file_facts(host, path)
    if not facts["exists"]:
        return facts, None
    try:
        data = json.loads(host.file(path).content_string)
    except ValueError:
        data = {}
    return facts, data if isinstance(data, dict) else {}


def missing(path: str) -> Finding:
    return Finding(False, f"{path} present", f"{path} missing")


def expect_file(owner: str, mode: str) -> dict[str, Any]:
    return {"exists": True, "owner": owner, "mode": mode}
