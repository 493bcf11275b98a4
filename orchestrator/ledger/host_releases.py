"""Host releases in the ledger: what each host runs now, and the release a rollback goes back to."""

from __future__ import annotations

from sqlalchemy import select

from .base import LedgerMixin
from .errors import LedgerError
from .models import Host, HostRelease, Run
from .records import TRACKS, HostReleaseRecord


class HostReleasesMixin(LedgerMixin):
    """What each host runs; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def set_host_release(
        self,
        client: str,
        host: str,
        *,
        stack_version: str,
        release_version: str,
        release_track: str,
        run_uid: str | None,
        actor: str | None = None,
    ) -> HostReleaseRecord:
        """Record what ``host`` runs now. A new release version pushes the old one into
        ``previous_release_version`` (what a rollback goes back to). Setting what is already recorded changes
        nothing and appends no event."""
        if release_track not in TRACKS:
            raise LedgerError(
                f"unknown release track {release_track!r}", hint=f"use one of {', '.join(sorted(TRACKS))}"
            )
        with self._write(actor) as tx:
            owner = self._require_client(tx.session, client)
            row = next((h for h in owner.hosts if h.name == host and h.removed_at is None), None)
            if row is None:
                raise LedgerError(f"host {host!r} of client {client!r} is not in the ledger", hint="sync hosts first")
            run = None
            if run_uid is not None:
                run = tx.session.scalars(select(Run).where(Run.uid == run_uid)).first()
                if run is None:
                    raise LedgerError(f"run {run_uid!r} is not in the ledger")
            current = tx.session.get(HostRelease, row.id)
            if current is not None and (
                current.stack_version,
                current.release_version,
                current.release_track,
            ) == (stack_version, release_version, release_track):
                return release_record(client, host, current, current.run.uid if current.run else None)
            if current is None:
                current = HostRelease(host_id=row.id, previous_release_version=None)
                tx.session.add(current)
            elif current.release_version != release_version:
                current.previous_release_version = current.release_version
            current.stack_version = stack_version
            current.release_version = release_version
            current.release_track = release_track
            current.updated_at = tx.now
            current.run_id = run.id if run else None
            tx.append(
                "host.release_set",
                client,
                host,
                {
                    "stack_version": stack_version,
                    "release_version": release_version,
                    "release_track": release_track,
                    "previous_release_version": current.previous_release_version,
                    "run": run_uid,
                },
            )
            tx.session.flush()
            return release_record(client, host, current, run_uid)

    def host_releases(self, client: str) -> list[HostReleaseRecord]:
        """What each live host of ``client`` runs, by host name; hosts with no recorded release are left out."""
        with self._read() as session:
            owner = self._require_client(session, client)
            rows = session.execute(
                select(Host.name, HostRelease, Run.uid)
                .join(HostRelease, HostRelease.host_id == Host.id)
                .outerjoin(Run, Run.id == HostRelease.run_id)
                .where(Host.client_id == owner.id, Host.removed_at.is_(None))
                .order_by(Host.name)
            ).all()
            return [release_record(client, name, release, run_uid) for name, release, run_uid in rows]


def release_record(client: str, host: str, release: HostRelease, run_uid: str | None) -> HostReleaseRecord:
    return HostReleaseRecord(
        client=client,
        host=host,
        stack_version=release.stack_version,
        release_version=release.release_version,
        release_track=release.release_track,
        previous_release_version=release.previous_release_version,
        updated_at=release.updated_at,
        run_uid=run_uid,
    )
