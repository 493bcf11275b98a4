"""Portal tokens in the ledger: read-only access of one client to its own figures (the collector's portal).

Only the token's sha256 is kept. Making and revoking one are events in the chain (``portal.token_created``,
``portal.token_revoked``) with who and when; using one is not (reads change nothing).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from .base import LedgerMixin
from .errors import LedgerError
from .models import Client, PortalToken


@dataclass(frozen=True)
class PortalTokenRecord:
    id: int
    client: str
    sha256_prefix: str
    label: str | None
    created_at: _dt.datetime
    revoked_at: _dt.datetime | None


def _record(row: PortalToken) -> PortalTokenRecord:
    return PortalTokenRecord(row.id, row.client, row.sha256[:12], row.label, row.created_at, row.revoked_at)


class PortalMixin(LedgerMixin):
    """Portal tokens; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def add_portal_token(
        self, client: str, sha256: str, *, label: str | None = None, actor: str | None = None
    ) -> PortalTokenRecord:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise LedgerError("a portal token hash must be a sha256 in lower-case hex")
        with self._write(actor) as tx:
            self._require_client(tx.session, client)
            if tx.session.scalars(select(PortalToken.id).where(PortalToken.sha256 == sha256)).first() is not None:
                raise LedgerError("that portal token is already registered")
            row = PortalToken(client=client, sha256=sha256, label=label, created_at=tx.now)
            tx.session.add(row)
            tx.session.flush()
            tx.append("portal.token_created", client, str(row.id), {"sha256_prefix": sha256[:12], "label": label})
            return _record(row)

    def revoke_portal_tokens(self, client: str, token_id: int | None = None, *, actor: str | None = None) -> int:
        """Revoke one live token of ``client`` (by id) or all of them; the count revoked."""
        with self._write(actor) as tx:
            query = update(PortalToken).where(PortalToken.client == client, PortalToken.revoked_at.is_(None))
            if token_id is not None:
                query = query.where(PortalToken.id == token_id)
            result: Any = tx.session.execute(query.values(revoked_at=tx.now))
            revoked = int(result.rowcount or 0)
            if revoked:
                subject = None if token_id is None else str(token_id)
                tx.append("portal.token_revoked", client, subject, {"revoked": revoked})
            return revoked

    def portal_tokens(self, client: str) -> list[PortalTokenRecord]:
        with self._read() as session:
            rows = session.scalars(select(PortalToken).where(PortalToken.client == client).order_by(PortalToken.id))
            return [_record(r) for r in rows]

    def portal_client(self, sha256: str) -> str | None:
        """The live client whose live portal token has this hash, or None (unknown, revoked, client removed)."""
        with self._read() as session:
            return session.scalar(
                select(PortalToken.client)
                .join(Client, Client.name == PortalToken.client)
                .where(PortalToken.sha256 == sha256, PortalToken.revoked_at.is_(None), Client.removed_at.is_(None))
            )
