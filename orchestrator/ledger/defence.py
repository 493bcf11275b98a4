"""Defence packs in the ledger: the signed packs built (their exact bytes, so the collector can serve them from any
machine), which pack each host of a client is meant to run, and the one before it that a revert goes back to.

Every change is an event in the chain: ``defence.pack_built`` (subject: the version), ``defence.assigned`` and
``defence.reverted`` (client and host; one event per host whose assignment changed). Assignments name clients and
hosts by name, like rollouts. Reads never change anything.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .base import LedgerMixin, names, required
from .defence_models import DefenceAssignment, DefencePack
from .errors import LedgerError
from .telemetry import is_live_host as _live_host

SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
SIGNATURE_BYTES = 64  # ed25519


@dataclass(frozen=True)
class PackRecord:
    """A built pack, without its bytes (:meth:`DefenceMixin.pack_blob` has them)."""

    version: str
    digest: str
    rules_version: str | None
    rule_count: int
    blocklist_count: int
    built_at: _dt.datetime
    built_by: str


@dataclass(frozen=True)
class AssignmentRecord:
    """The pack ``host`` of ``client`` is meant to run (``version`` None: the release's own rules) and the one
    before it."""

    client: str
    host: str
    version: str | None
    digest: str | None
    previous_version: str | None
    previous_digest: str | None
    push_uid: str | None
    assigned_at: _dt.datetime


def _pack_record(row: DefencePack) -> PackRecord:
    return PackRecord(
        version=row.version,
        digest=row.digest,
        rules_version=row.rules_version,
        rule_count=row.rule_count,
        blocklist_count=row.blocklist_count,
        built_at=row.built_at,
        built_by=row.built_by,
    )


def _assignment_record(row: DefenceAssignment) -> AssignmentRecord:
    return AssignmentRecord(
        client=row.client,
        host=row.host,
        version=row.version,
        digest=row.digest,
        previous_version=row.previous_version,
        previous_digest=row.previous_digest,
        push_uid=row.push_uid,
        assigned_at=row.assigned_at,
    )


class DefenceMixin(LedgerMixin):
    """Defence packs and their assignment to hosts; part of :class:`~orchestrator.ledger.store.Ledger`."""

    # ------------------------------------------------------------------------------------------- packs

    def record_pack(
        self,
        version: str,
        digest: str,
        signature: bytes,
        content: bytes,
        *,
        rules_version: str | None,
        rule_count: int,
        blocklist_count: int,
        actor: str | None = None,
    ) -> None:
        """Record a built pack. A version already recorded is refused: a pack is never replaced by another with the
        same version (an agent that saw one digest for it must never be shown a second)."""
        required(version, "a pack version")
        if not SHA256_RE.match(digest) or hashlib.sha256(content).hexdigest() != digest:
            raise LedgerError(f"pack {version}: the digest is not the sha256 of its content")
        if len(signature) != SIGNATURE_BYTES:
            raise LedgerError(f"pack {version}: an ed25519 signature is {SIGNATURE_BYTES} bytes, not {len(signature)}")
        if rule_count < 0 or blocklist_count < 0:
            raise LedgerError(f"pack {version}: counts cannot be negative")
        with self._write(actor) as tx:
            if tx.session.scalar(select(DefencePack.id).where(DefencePack.version == version)) is not None:
                raise LedgerError(
                    f"defence pack {version} is already in the ledger",
                    hint="a pack version is never overwritten: build a new version",
                )
            tx.session.add(
                DefencePack(
                    version=version,
                    digest=digest,
                    signature=bytes(signature),
                    content=bytes(content),
                    rules_version=rules_version,
                    rule_count=rule_count,
                    blocklist_count=blocklist_count,
                    built_at=tx.now,
                    built_by=tx.actor,
                )
            )
            tx.append(
                "defence.pack_built",
                None,
                version,
                {
                    "digest": digest,
                    "rules_version": rules_version,
                    "rule_count": rule_count,
                    "blocklist_count": blocklist_count,
                },
            )

    def packs(self) -> list[PackRecord]:
        """Every built pack, oldest first."""
        with self._read() as session:
            return [_pack_record(r) for r in session.scalars(select(DefencePack).order_by(DefencePack.id))]

    def pack(self, version: str) -> PackRecord | None:
        with self._read() as session:
            row = session.scalars(select(DefencePack).where(DefencePack.version == version)).first()
            return None if row is None else _pack_record(row)

    def pack_blob(self, version: str) -> tuple[bytes, bytes, str] | None:
        """(content, signature, digest) of a pack, or None when there is no such version."""
        with self._read() as session:
            row = session.execute(
                select(DefencePack.content, DefencePack.signature, DefencePack.digest).where(
                    DefencePack.version == version
                )
            ).first()
            return None if row is None else (bytes(row.content), bytes(row.signature), row.digest)

    # ------------------------------------------------------------------------------------------- assignments

    def assign_pack(
        self,
        client: str,
        hosts: Sequence[str],
        version: str | None,
        digest: str | None,
        *,
        push_uid: str | None = None,
        actor: str | None = None,
    ) -> None:
        """Make ``version`` (None: no pack, the release's own rules) what each of ``hosts`` (live hosts of
        ``client``) is meant to run. A host whose current assignment differs keeps it as ``previous`` (what a
        revert goes back to); a host already meant to run it is left as it is, without an event."""
        wanted = names(hosts, f"hosts of client {client!r}")
        if (version is None) != (digest is None):
            raise LedgerError("a pack assignment names both a version and its digest, or neither")
        with self._write(actor) as tx:
            self._require_client(tx.session, client)
            if version is not None:
                known = tx.session.scalar(select(DefencePack.digest).where(DefencePack.version == version))
                if known is None:
                    raise LedgerError(f"defence pack {version} is not in the ledger", hint="build it first")
                if known != digest:
                    raise LedgerError(f"defence pack {version} has digest {known[:12]}…, not {str(digest)[:12]}…")
            conn = tx.session.connection()
            for host in wanted:
                if not _live_host(conn, client, host):
                    raise LedgerError(f"host {host!r} is not a live host of client {client!r}")
            rows = _assignment_rows(tx.session, client, wanted)
            for host in wanted:
                row = rows.get(host)
                if row is None and version is None:
                    continue  # no pack, never had one: nothing to record
                if row is None:
                    row = DefenceAssignment(client=client, host=host, version=None, digest=None)
                    tx.session.add(row)
                elif (row.version, row.digest) == (version, digest):
                    continue
                row.previous_version, row.previous_digest = row.version, row.digest
                row.version, row.digest = version, digest
                row.push_uid = push_uid
                row.assigned_at = tx.now
                tx.append(
                    "defence.assigned",
                    client,
                    host,
                    {
                        "version": version,
                        "digest": digest,
                        "previous_version": row.previous_version,
                        "previous_digest": row.previous_digest,
                        "push": push_uid,
                    },
                )
            tx.session.flush()

    def revert_packs(
        self, client: str, hosts: Sequence[str] | None = None, *, reason: str, actor: str | None = None
    ) -> list[AssignmentRecord]:
        """Put each of ``hosts`` (None: every host of ``client`` with an assignment) back on its previous pack;
        the pack it leaves becomes its previous one (a second revert undoes the first). Hosts with no assignment,
        or whose previous is what they run already, are left alone. The assignments that changed, by host."""
        required(reason, "the reason of a revert")
        wanted = None if hosts is None else names(hosts, f"hosts of client {client!r}")
        with self._write(actor) as tx:
            rows = _assignment_rows(tx.session, client, wanted)
            changed: list[AssignmentRecord] = []
            for host in sorted(rows):
                row = rows[host]
                if (row.previous_version, row.previous_digest) == (row.version, row.digest):
                    continue
                left = (row.version, row.digest)
                row.version, row.digest = row.previous_version, row.previous_digest
                row.previous_version, row.previous_digest = left
                row.push_uid = None
                row.assigned_at = tx.now
                tx.append(
                    "defence.reverted",
                    client,
                    host,
                    {"version": row.version, "digest": row.digest, "left_version": left[0], "reason": reason},
                )
                changed.append(_assignment_record(row))
            tx.session.flush()
            return changed

    def assignments(self, client: str | None = None) -> list[AssignmentRecord]:
        """Every assignment (of one client), by client and host."""
        query = select(DefenceAssignment).order_by(DefenceAssignment.client, DefenceAssignment.host)
        if client is not None:
            query = query.where(DefenceAssignment.client == client)
        with self._read() as session:
            return [_assignment_record(r) for r in session.scalars(query)]

    def assignment(self, client: str, host: str) -> AssignmentRecord | None:
        with self._read() as session:
            row = session.scalars(
                select(DefenceAssignment).where(DefenceAssignment.client == client, DefenceAssignment.host == host)
            ).first()
            return None if row is None else _assignment_record(row)

    def pack_offered_to(self, client: str, version: str) -> bool:
        """Whether ``version`` is, or was just before, the pack of some host of ``client``: the collector serves a
        client only the packs meant for it (an agent may still be fetching the one a new assignment replaced)."""
        with self._read() as session:
            found = session.scalar(
                select(DefenceAssignment.id)
                .where(
                    DefenceAssignment.client == client,
                    or_(DefenceAssignment.version == version, DefenceAssignment.previous_version == version),
                )
                .limit(1)
            )
            return found is not None

    def host_is_live(self, client: str, host: str) -> bool:
        """Whether ``host`` is a live host of the live client ``client`` (what the collector asks of an agent)."""
        with self._read() as session:
            return _live_host(session.connection(), client, host)


def _assignment_rows(session: Session, client: str, hosts: Sequence[str] | None) -> dict[str, DefenceAssignment]:
    query = select(DefenceAssignment).where(DefenceAssignment.client == client)
    if hosts is not None:
        query = query.where(DefenceAssignment.host.in_(list(hosts)))
    return {r.host: r for r in session.scalars(query)}
