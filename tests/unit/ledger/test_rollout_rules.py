"""The rollout state machine, the lock error's message and the record helpers, as pure values."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.ledger import (
    FINAL_ROLLOUT_STATES,
    ROLLOUT_HOST_STATUSES,
    ROLLOUT_STATES,
    ROLLOUT_TRANSITIONS,
    LedgerError,
    RolloutHostRecord,
    RolloutLocked,
    RolloutLockRecord,
    RolloutRecord,
    TrainingRecord,
)
from orchestrator.ledger.base import names

AT = dt.datetime(2025, 3, 14, 9, 30, 5, 123456, tzinfo=dt.UTC)


def test_the_states_and_their_transitions() -> None:
    assert {
        "planned",
        "running",
        "halted",
        "rolling_back",
        "rolled_back",
        "completed",
        "completed_with_failures",
        "waiting_window",
        "aborted",
        "failed",
    } == ROLLOUT_STATES
    assert {"completed", "rolled_back", "aborted", "failed"} == FINAL_ROLLOUT_STATES
    assert dict(ROLLOUT_TRANSITIONS) == {
        "planned": {"running", "rolling_back", "aborted"},
        "running": {"running", "halted", "completed", "completed_with_failures", "waiting_window", "aborted"},
        "completed_with_failures": {"running", "aborted"},
        "waiting_window": {"running", "aborted"},
        "halted": {"rolling_back", "aborted"},
        "rolling_back": {"rolling_back", "rolled_back", "failed", "aborted"},
        "completed": set(),
        "rolled_back": set(),
        "aborted": set(),
        "failed": set(),
    }
    # Nothing goes back to planned; every state but planned can be reached; every live state can be aborted.
    targets = set().union(*ROLLOUT_TRANSITIONS.values())
    assert targets == ROLLOUT_STATES - {"planned"}
    assert all("aborted" in ROLLOUT_TRANSITIONS[s] for s in ROLLOUT_STATES - FINAL_ROLLOUT_STATES)


def test_host_statuses() -> None:
    assert {
        "pending",
        "deferred",
        "waiting_training",
        "skipped",
        "updating",
        "updated",
        "healthy",
        "failed",
        "unreachable",
        "rolling_back",
        "rolled_back",
        "rollback_failed",
    } == ROLLOUT_HOST_STATUSES
    # They fit the column.
    assert max(len(s) for s in ROLLOUT_HOST_STATUSES | ROLLOUT_STATES) <= 32


def lock(client: str, uid: str = "ro-20250314-1.5.0-ab12") -> RolloutLockRecord:
    return RolloutLockRecord(client, uid, "ctl1.sentry.test", 4242, AT, AT + dt.timedelta(minutes=2))


def test_rollout_locked_names_the_holder_on_one_line() -> None:
    error = RolloutLocked([lock("acme")])
    assert isinstance(error, LedgerError)
    assert error.message == (
        "client 'acme' is locked by rollout ro-20250314-1.5.0-ab12 (host ctl1.sentry.test, pid 4242) "
        "since 2025-03-14 09:30:05 UTC, last heartbeat 2025-03-14 09:32:05 UTC"
    )
    assert error.hint == (
        "see 'sentryctl rollout status ro-20250314-1.5.0-ab12'; "
        "if that process is dead, carry its rollout on: 'sentryctl rollout resume ro-20250314-1.5.0-ab12'"
    )
    assert "abort" not in str(error)  # an abort would leave the dead holder's hosts as they were, maybe half a wave
    assert "\n" not in str(error)
    assert error.lock == lock("acme")

    several = RolloutLocked([lock("acme"), lock("globex", "ro-other")])
    assert several.message.startswith("client 'acme' is locked by rollout ro-20250314-1.5.0-ab12 ")
    assert several.message.endswith("; 1 more client(s) are locked too")
    assert [lk.client for lk in several.locks] == ["acme", "globex"]


def test_rollout_locked_shows_utc_whatever_the_zone() -> None:
    madrid = dt.timezone(dt.timedelta(hours=1))
    record = RolloutLockRecord("acme", "ro-1", "ctl", 1, AT.astimezone(madrid), AT.astimezone(madrid))
    assert "since 2025-03-14 09:30:05 UTC" in RolloutLocked([record]).message


def test_rollout_record_helpers() -> None:
    hosts = tuple(
        RolloutHostRecord("acme", name, wave, status, "1.5.0", None, {}, AT)
        for name, wave, status in (("web1", 0, "healthy"), ("web2", 1, "pending"))
    )
    record = RolloutRecord(
        uid="ro-1",
        release_version="1.5.0",
        track="hotfix",
        state="running",
        plan={},
        clients=("acme",),
        emergency_reason=None,
        parent_uid=None,
        actor="rm@ops",
        created_at=AT,
        updated_at=AT,
        finished_at=None,
        detail={},
        hosts=hosts,
    )
    assert not record.final
    assert record.host("acme", "web2") == hosts[1]
    assert record.host("globex", "web2") is None
    training = TrainingRecord(1, "acme", "2.0", None, None, "Ana", "scheduled", None, None, (), None, AT)
    assert not training.signed_off


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "the clients is empty"),
        (["acme", ""], "contains a blank name"),
        (["acme", "acme"], "names 'acme' twice"),
        ("acme", "not the string 'acme'"),
    ],
)
def test_names_refuses_mistakes(values: list[str], message: str) -> None:
    with pytest.raises(LedgerError, match=message):
        names(values, "the clients")


def test_names_keeps_order_and_strips_on_request() -> None:
    assert names(["b", "a"], "x") == ["b", "a"]
    assert names([" Bo ", "Cy"], "x", strip=True) == ["Bo", "Cy"]
    with pytest.raises(LedgerError, match="names 'Bo' twice"):
        names(["Bo", " Bo"], "x", strip=True)
