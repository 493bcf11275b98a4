"""FailureBudget: exactly at the budget continues, one more failure halts."""

from __future__ import annotations

import pytest

from orchestrator.rollout import FailureBudget


def test_count_exactly_at_the_budget_continues_one_more_halts() -> None:
    budget = FailureBudget(max_failed=2, max_failed_percent=None, min_finished=1)
    assert not budget.exceeded(finished=50, failed=2)
    assert budget.exceeded(finished=50, failed=3)


def test_zero_tolerance() -> None:
    budget = FailureBudget(max_failed=0, max_failed_percent=None)
    assert not budget.exceeded(finished=5, failed=0)
    assert budget.exceeded(finished=5, failed=1)


def test_percent_exactly_at_the_budget_continues_one_more_halts() -> None:
    budget = FailureBudget(max_failed=None, max_failed_percent=10.0, min_finished=10)
    assert not budget.exceeded(finished=10, failed=1)  # exactly 10%
    assert budget.exceeded(finished=10, failed=2)
    assert not budget.exceeded(finished=20, failed=2)
    assert budget.exceeded(finished=20, failed=3)


def test_percent_applies_only_once_min_finished_hosts_finished() -> None:
    budget = FailureBudget(max_failed=None, max_failed_percent=10.0, min_finished=10)
    assert not budget.exceeded(finished=9, failed=5)  # 55% of nine hosts says nothing yet
    assert budget.exceeded(finished=10, failed=5)


def test_percent_is_exact_for_decimal_budgets() -> None:
    # 33.3% of 1000 is 333: in float arithmetic 333/1000*100 is 33.300000000000004, which would halt wrongly.
    budget = FailureBudget(max_failed=None, max_failed_percent=33.3, min_finished=1)
    assert not budget.exceeded(finished=1000, failed=333)
    assert budget.exceeded(finished=1000, failed=334)


def test_both_forms_each_halt_on_their_own() -> None:
    budget = FailureBudget(max_failed=3, max_failed_percent=20.0, min_finished=10)
    assert not budget.exceeded(finished=5, failed=3)  # count at the budget, percent not yet applicable
    assert budget.exceeded(finished=5, failed=4)  # the count halts before min_finished
    assert not budget.exceeded(finished=10, failed=2)
    assert budget.exceeded(finished=10, failed=3)  # 30% > 20% halts while the count still allows it
    assert budget.exceeded(finished=100, failed=4)  # 4% but over the count


def test_nothing_finished() -> None:
    assert not FailureBudget(max_failed=None, max_failed_percent=0.0, min_finished=0).exceeded(0, 0)


@pytest.mark.parametrize(("finished", "failed"), [(-1, 0), (1, -1), (2, 3)])
def test_impossible_counts_are_a_bug(finished: int, failed: int) -> None:
    with pytest.raises(ValueError, match="impossible counts"):
        FailureBudget(max_failed=1, max_failed_percent=None).exceeded(finished, failed)


def test_json_round_trip() -> None:
    budget = FailureBudget(max_failed=None, max_failed_percent=12.5, min_finished=8)
    assert FailureBudget.from_json(budget.to_json()) == budget
