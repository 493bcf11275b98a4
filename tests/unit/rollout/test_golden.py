"""The planner against its golden plans: one test per ``golden/<case>.yml``, compared with ``<case>.json``."""

from __future__ import annotations

import difflib
import json

import pytest

from orchestrator.rollout.plan import RolloutPlan

from .cases import GOLDEN, case_names, render, run_case

REGEN = "if the change is intended: python -m tests.unit.rollout.regen {name}  (then review git diff)"


@pytest.mark.parametrize("name", case_names())
def test_plan_matches_golden(name: str) -> None:
    expected_path = GOLDEN / f"{name}.json"
    assert expected_path.exists(), f"{expected_path.name} is missing; {REGEN.format(name=name)}"
    expected = expected_path.read_text(encoding="utf-8")
    actual = render(run_case(name))
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"golden/{name}.json (expected)",
            tofile=f"plan({name}.yml) (actual)",
        )
        pytest.fail(f"plan differs from golden/{name}.json:\n{''.join(diff)}\n{REGEN.format(name=name)}", pytrace=False)


@pytest.mark.parametrize("name", case_names())
def test_golden_plan_survives_the_ledger_round_trip(name: str) -> None:
    p = run_case(name)
    assert RolloutPlan.from_json(json.loads(render(p))) == p


def test_every_golden_json_has_its_inputs() -> None:
    orphans = sorted(p.name for p in GOLDEN.glob("*.json") if not p.with_suffix(".yml").exists())
    assert not orphans, f"golden plans without a case file: {orphans}"
    assert len(case_names()) >= 10
