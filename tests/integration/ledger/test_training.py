"""On-site training: scheduled, moved, signed off with its attendees, and found again by the feature-track gate
by release or by module."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.ledger import Ledger, LedgerError

DAY = dt.date(2025, 3, 14)


@pytest.fixture
def acme(ledger: Ledger) -> Ledger:
    ledger.add_client("acme", "enterprise", {})
    ledger.add_client("globex", "essentials", {})
    return ledger


def test_schedule_then_sign_off(acme: Ledger) -> None:
    assert acme.training_status("acme", "2.0.0") is None
    scheduled = acme.schedule_training("acme", "2.0.0", trainer=" Ana Trainer ", scheduled_for=DAY, actor="rm@ops")
    assert (scheduled.client, scheduled.release_version, scheduled.module) == ("acme", "2.0.0", None)
    assert (scheduled.scheduled_for, scheduled.trainer, scheduled.state) == (DAY, "Ana Trainer", "scheduled")
    assert (scheduled.signed_off_at, scheduled.signed_off_by, scheduled.attendees, scheduled.notes) == (
        None,
        None,
        (),
        None,
    )
    assert not scheduled.signed_off
    assert acme.training_status("acme", "2.0.0") == scheduled

    signed = acme.signoff_training(
        "acme",
        "2.0.0",
        trainer="Ana Trainer",
        attendees=["Bo Ops", " Cy SecLead "],
        notes="covered the new rules",
        actor="ana@sentry",
    )
    assert signed.id == scheduled.id
    assert signed.signed_off
    assert (signed.scheduled_for, signed.signed_off_by, signed.attendees) == (
        DAY,
        "ana@sentry",
        ("Bo Ops", "Cy SecLead"),
    )
    assert signed.signed_off_at is not None
    assert signed.notes == "covered the new rules"
    assert acme.training_status("acme", "2.0.0") == signed
    assert acme.trainings("acme") == [signed]

    events = acme.events(client="acme")[-2:]
    assert [(e.kind, e.subject, e.actor) for e in events] == [
        ("training.scheduled", "2.0.0", "rm@ops"),
        ("training.signed_off", "2.0.0", "ana@sentry"),
    ]
    assert events[0].payload == {
        "session": scheduled.id,
        "module": None,
        "trainer": "Ana Trainer",
        "scheduled_for": "2025-03-14",
    }
    assert events[1].payload == {
        "session": scheduled.id,
        "module": None,
        "trainer": "Ana Trainer",
        "attendees": ["Bo Ops", "Cy SecLead"],
        "notes": "covered the new rules",
        "scheduled_for": "2025-03-14",
    }


def test_rescheduling_moves_the_session(acme: Ledger) -> None:
    first = acme.schedule_training("acme", "2.0.0", trainer="Ana", scheduled_for=DAY)
    events = len(acme.events())
    assert acme.schedule_training("acme", "2.0.0", trainer="Ana", scheduled_for=DAY) == first
    assert len(acme.events()) == events
    moved = acme.schedule_training("acme", "2.0.0", trainer="Bo", scheduled_for=DAY + dt.timedelta(days=7))
    assert moved.id == first.id
    assert (moved.trainer, moved.scheduled_for) == ("Bo", dt.date(2025, 3, 21))
    assert acme.events()[-1].payload["previous"] == {"trainer": "Ana", "scheduled_for": "2025-03-14"}
    # Another module or release is another session; so is one with no date yet.
    acme.schedule_training("acme", "2.0.0", trainer="Ana", scheduled_for=None, module="rules-v2")
    acme.schedule_training("acme", "2.1.0", trainer="Ana", scheduled_for=None)
    assert [(t.release_version, t.module, t.scheduled_for) for t in acme.trainings()] == [
        ("2.1.0", None, None),
        ("2.0.0", "rules-v2", None),
        ("2.0.0", None, dt.date(2025, 3, 21)),
    ]


def test_sign_off_without_a_schedule_and_a_different_trainer(acme: Ledger) -> None:
    signed = acme.signoff_training("acme", "2.0.0", trainer="Cy", attendees=["Bo Ops"], unscheduled=True)
    assert (signed.state, signed.scheduled_for, signed.trainer, signed.notes) == ("signed_off", None, "Cy", None)
    assert signed.signed_off_by == "tester@ci"

    acme.schedule_training("acme", "2.1.0", trainer="Ana", scheduled_for=DAY)
    delivered = acme.signoff_training("acme", "2.1.0", trainer="Dee", attendees=["Bo Ops"], notes="  ")
    assert (delivered.trainer, delivered.notes) == ("Dee", None)
    assert acme.events()[-1].payload["scheduled_trainer"] == "Ana"


def test_status_by_release_and_by_module(acme: Ledger) -> None:
    acme.schedule_training("acme", "2.0.0", trainer="Ana", scheduled_for=DAY, module="rules-v2")
    # A sign-off naming the module finds the session scheduled for it.
    signed = acme.signoff_training("acme", "2.0.0", trainer="Ana", attendees=["Bo"], module="rules-v2")
    assert (signed.module, signed.scheduled_for) == ("rules-v2", DAY)

    # 2.0.1 needs the same module: covered by the 2.0.0 sign-off, but only when the module is asked for.
    assert acme.training_status("acme", "2.0.1", "rules-v2") == signed
    assert acme.training_status("acme", "2.0.1") is None
    assert acme.training_status("acme", "2.0.1", "rules-v3") is None
    # A scheduled session for 2.0.1 is what shows until one covering it is signed off.
    acme.schedule_training("acme", "3.0.0", trainer="Ana", scheduled_for=DAY, module="rules-v3")
    later = acme.schedule_training("acme", "3.0.1", trainer="Ana", scheduled_for=DAY + dt.timedelta(days=1))
    assert acme.training_status("acme", "3.0.1", "rules-v3") == later
    status = acme.training_status("acme", "3.0.2", "rules-v3")
    assert status is not None
    assert (status.release_version, status.state) == ("3.0.0", "scheduled")
    # A signed-off session beats a scheduled one.
    done = acme.signoff_training("acme", "3.0.0", trainer="Ana", attendees=["Bo"], module="rules-v3")
    assert acme.training_status("acme", "3.0.1", "rules-v3") == done

    # Another client's training covers nothing here.
    assert acme.training_status("globex", "2.0.0", "rules-v2") is None
    assert len(acme.trainings()) == 3
    assert acme.trainings("globex") == []
    assert acme.verify().ok


def test_sign_off_only_matches_a_compatible_module(acme: Ledger) -> None:
    other = acme.schedule_training("acme", "2.0.0", trainer="Ana", scheduled_for=DAY, module="rules-v2")
    signed = acme.signoff_training(
        "acme", "2.0.0", trainer="Ana", attendees=["Bo"], module="agent-basics", unscheduled=True
    )
    assert signed.id != other.id
    assert signed.module == "agent-basics"
    # Without a module, the sign-off completes whatever was scheduled for the release, and keeps its module.
    completed = acme.signoff_training("acme", "2.0.0", trainer="Ana", attendees=["Bo"])
    assert (completed.id, completed.module) == (other.id, "rules-v2")


def test_training_survives_a_tier_change(acme: Ledger) -> None:
    signed = acme.signoff_training("acme", "2.0.0", trainer="Ana", attendees=["Bo"], unscheduled=True)
    acme.remove_client("acme")
    acme.add_client("acme", "professional", {})
    assert acme.training_status("acme", "2.0.0") == signed


def test_training_mistakes_are_refused(acme: Ledger) -> None:
    with pytest.raises(LedgerError, match="client 'nobody' is not in the ledger"):
        acme.schedule_training("nobody", "2.0.0", trainer="Ana", scheduled_for=DAY)
    with pytest.raises(LedgerError, match="client 'nobody' is not in the ledger"):
        acme.signoff_training("nobody", "2.0.0", trainer="Ana", attendees=["Bo"])
    with pytest.raises(LedgerError, match="client 'nobody' is not in the ledger"):
        acme.training_status("nobody", "2.0.0")
    with pytest.raises(LedgerError, match="a trainer's name is required"):
        acme.signoff_training("acme", "2.0.0", trainer="  ", attendees=["Bo"])
    with pytest.raises(LedgerError, match="a trainer's name is required"):
        acme.schedule_training("acme", "2.0.0", trainer="", scheduled_for=DAY)
    with pytest.raises(LedgerError, match="the attendees of a training sign-off is empty"):
        acme.signoff_training("acme", "2.0.0", trainer="Ana", attendees=[])
    with pytest.raises(LedgerError, match="contains a blank name"):
        acme.signoff_training("acme", "2.0.0", trainer="Ana", attendees=["Bo", " "])
    with pytest.raises(LedgerError, match="names 'Bo' twice"):
        acme.signoff_training("acme", "2.0.0", trainer="Ana", attendees=["Bo", "Bo "])
    with pytest.raises(LedgerError, match="not the string 'Bo'"):
        acme.signoff_training("acme", "2.0.0", trainer="Ana", attendees="Bo")
    with pytest.raises(LedgerError, match="scheduled for a date, not"):
        acme.schedule_training("acme", "2.0.0", trainer="Ana", scheduled_for=dt.datetime(2025, 3, 14, 9, 0))
    with pytest.raises(LedgerError, match="the release version of a training is required"):
        acme.schedule_training("acme", "", trainer="Ana", scheduled_for=DAY)
    with pytest.raises(LedgerError, match="a training module name"):
        acme.schedule_training("acme", "2.0.0", trainer="Ana", scheduled_for=DAY, module=" ")
    assert acme.trainings() == []
    assert [e.kind for e in acme.events()] == ["client.created", "client.created"]


def test_an_unscheduled_sign_off_needs_the_flag_and_says_so(acme: Ledger) -> None:
    """A sign-off opens the feature gate: one that was never scheduled is refused unless asked for, and then
    its event records it as unscheduled."""
    import pytest

    from orchestrator.ledger.errors import LedgerError

    before = len(acme.events(limit=1000))
    with pytest.raises(LedgerError, match=r"no training of acme for 4\.0\.0 is scheduled"):
        acme.signoff_training("acme", "4.0.0", trainer="Cy", attendees=["Bo Ops"])
    assert len(acme.events(limit=1000)) == before and acme.training_status("acme", "4.0.0") is None
    acme.signoff_training("acme", "4.0.0", trainer="Cy", attendees=["Bo Ops"], unscheduled=True)
    assert acme.events(limit=1)[-1].payload["unscheduled"] is True
    acme.schedule_training("acme", "4.1.0", trainer="Ana", scheduled_for=DAY, backdate_reason="held last week")
    assert acme.events(limit=1)[-1].payload["backdated"] == "held last week"
    acme.signoff_training("acme", "4.1.0", trainer="Ana", attendees=["Bo Ops"])
    assert "unscheduled" not in acme.events(limit=1)[-1].payload
