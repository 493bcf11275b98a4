"""On-site training in the ledger: sessions scheduled and signed off, the gate of the feature track.

A session trains one client's staff for a release, or for a ``module`` that may cover several releases. Scheduling
again for the same client, release and module moves the scheduled session (new date or trainer) instead of adding
a second one. Signing off completes the latest scheduled session for that release, or records a session that was
never scheduled. The client must be live in the ledger; sessions name it by name, so they outlive a tier change
(which removes the client's record and adds a new one).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from .base import LedgerMixin, names, required
from .errors import LedgerError
from .models import TrainingSession
from .records import TrainingRecord


def _module(module: str | None) -> str | None:
    if module is None:
        return None
    return required(module, "a training module name (or None)").strip()


def _day(scheduled_for: _dt.date | None) -> str | None:
    if scheduled_for is None:
        return None
    if isinstance(scheduled_for, _dt.datetime) or not isinstance(scheduled_for, _dt.date):
        raise LedgerError(f"a training is scheduled for a date, not {scheduled_for!r}")
    return scheduled_for.isoformat()


def _same_module(module: str | None) -> ColumnElement[bool]:
    return TrainingSession.module.is_(None) if module is None else TrainingSession.module == module


def _latest(session: Session, *where: ColumnElement[bool]) -> TrainingSession | None:
    return session.scalars(select(TrainingSession).where(*where).order_by(TrainingSession.id.desc()).limit(1)).first()


class TrainingMixin(LedgerMixin):
    """Training sessions and sign-offs; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def schedule_training(
        self,
        client: str,
        release_version: str,
        *,
        trainer: str,
        scheduled_for: _dt.date | None,
        module: str | None = None,
        actor: str | None = None,
        backdate_reason: str | None = None,
    ) -> TrainingRecord:
        """Schedule a session (event ``training.scheduled``), or move the one already scheduled for this client,
        release and module (the event then carries ``previous``; moving it nowhere changes nothing). A session
        recorded for a past day carries ``backdate_reason`` in its event as ``backdated``."""
        required(release_version, "the release version of a training")
        trainer = required(trainer, "a trainer's name").strip()
        module = _module(module)
        day = _day(scheduled_for)
        with self._write(actor) as tx:
            self._require_client(tx.session, client)
            row = _latest(
                tx.session,
                TrainingSession.client == client,
                TrainingSession.release_version == release_version,
                _same_module(module),
                TrainingSession.state == "scheduled",
            )
            previous: dict[str, Any] | None = None
            if row is None:
                row = TrainingSession(
                    client=client,
                    release_version=release_version,
                    module=module,
                    scheduled_for=day,
                    trainer=trainer,
                    state="scheduled",
                    attendees=[],
                    created_at=tx.now,
                )
                tx.session.add(row)
                tx.session.flush()
            elif (row.trainer, row.scheduled_for) == (trainer, day):
                return training_record(row)
            else:
                previous = {"trainer": row.trainer, "scheduled_for": row.scheduled_for}
                row.trainer, row.scheduled_for = trainer, day
            payload: dict[str, Any] = {"session": row.id, "module": module, "trainer": trainer, "scheduled_for": day}
            if previous is not None:
                payload["previous"] = previous
            if backdate_reason:
                payload["backdated"] = backdate_reason.strip()
            tx.append("training.scheduled", client, release_version, payload)
            tx.session.flush()
            return training_record(row)

    def signoff_training(
        self,
        client: str,
        release_version: str,
        *,
        trainer: str,
        attendees: Sequence[str],
        notes: str | None = None,
        module: str | None = None,
        actor: str | None = None,
        unscheduled: bool = False,
    ) -> TrainingRecord:
        """Sign off the training of ``client`` for ``release_version`` by ``trainer`` with at least one attendee
        (event ``training.signed_off``). The latest scheduled session for that release is the one signed off (with
        ``module``: one for that module or for none); without one, the sign-off is refused unless ``unscheduled``
        (the gate it opens was never planned: the session is then recorded on its own, its event saying
        ``unscheduled: true``). ``signed_off_by`` is the actor, who recorded it."""
        required(release_version, "the release version of a training")
        trainer = required(trainer, "a trainer's name").strip()
        people = names(attendees, "the attendees of a training sign-off", strip=True)
        module = _module(module)
        notes = (notes.strip() or None) if notes is not None else None
        with self._write(actor) as tx:
            self._require_client(tx.session, client)
            row = _latest(
                tx.session,
                TrainingSession.client == client,
                TrainingSession.release_version == release_version,
                TrainingSession.state == "scheduled",
                *(() if module is None else (or_(TrainingSession.module.is_(None), TrainingSession.module == module),)),
            )
            scheduled_trainer = None
            if row is None and not unscheduled:
                raise LedgerError(
                    f"no training of {client} for {release_version} is scheduled",
                    hint="schedule it with 'sentryctl training schedule', or pass --unscheduled to record it as such",
                )
            never_scheduled = row is None
            if row is None:
                row = TrainingSession(
                    client=client,
                    release_version=release_version,
                    module=module,
                    scheduled_for=None,
                    created_at=tx.now,
                )
                tx.session.add(row)
            else:
                scheduled_trainer = row.trainer
                row.module = row.module or module
            row.trainer = trainer
            row.state = "signed_off"
            row.signed_off_at = tx.now
            row.signed_off_by = tx.actor
            row.attendees = people
            row.notes = notes
            tx.session.flush()
            payload: dict[str, Any] = {
                "session": row.id,
                "module": row.module,
                "trainer": trainer,
                "attendees": people,
                "notes": notes,
                "scheduled_for": row.scheduled_for,
            }
            if scheduled_trainer is not None and scheduled_trainer != trainer:
                payload["scheduled_trainer"] = scheduled_trainer
            if never_scheduled:
                payload["unscheduled"] = True
            tx.append("training.signed_off", client, release_version, payload)
            return training_record(row)

    def trainings(self, client: str | None = None) -> list[TrainingRecord]:
        """Every session, the newest first; with ``client``, that client's (every incarnation of the name)."""
        query = select(TrainingSession).order_by(TrainingSession.id.desc())
        if client is not None:
            query = query.where(TrainingSession.client == client)
        with self._read() as session:
            return [training_record(row) for row in session.scalars(query)]

    def training_status(self, client: str, release_version: str, module: str | None = None) -> TrainingRecord | None:
        """What the training gate needs: the latest signed-off session covering this release (for this release
        version, or with ``module``, for that module), else the latest scheduled one covering it, else None."""
        with self._read() as session:
            self._require_client(session, client)
            covers: ColumnElement[bool] = TrainingSession.release_version == release_version
            if module is not None:
                covers = or_(covers, TrainingSession.module == module)
            signed = session.scalars(
                select(TrainingSession)
                .where(TrainingSession.client == client, covers, TrainingSession.state == "signed_off")
                .order_by(TrainingSession.signed_off_at.desc(), TrainingSession.id.desc())
                .limit(1)
            ).first()
            if signed is not None:
                return training_record(signed)
            scheduled = _latest(session, TrainingSession.client == client, covers, TrainingSession.state == "scheduled")
            return None if scheduled is None else training_record(scheduled)


def training_record(row: TrainingSession) -> TrainingRecord:
    return TrainingRecord(
        id=row.id,
        client=row.client,
        release_version=row.release_version,
        module=row.module,
        scheduled_for=None if row.scheduled_for is None else _dt.date.fromisoformat(row.scheduled_for),
        trainer=row.trainer,
        state=row.state,
        signed_off_at=row.signed_off_at,
        signed_off_by=row.signed_off_by,
        attendees=tuple(row.attendees),
        notes=row.notes,
        created_at=row.created_at,
    )
