"""Clients in the ledger: who is onboarded, with which tier and meta, and since when.

A removed client keeps its rows for history and frees its name; every incarnation of a name is its own row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .base import LedgerMixin, json_object
from .errors import LedgerError
from .hosts import host_record, live
from .models import Client, Host
from .records import ClientRecord


class ClientsMixin(LedgerMixin):
    """Clients; part of :class:`~orchestrator.ledger.store.Ledger`."""

    @staticmethod
    def _live_client(session: Session, name: str) -> Client | None:
        return session.scalars(
            select(Client).where(Client.name == name, Client.removed_at.is_(None)).options(selectinload(Client.hosts))
        ).first()

    @staticmethod
    def _require_client(session: Session, name: str) -> Client:
        client = ClientsMixin._live_client(session, name)
        if client is None:
            raise LedgerError(f"client {name!r} is not in the ledger", hint="add it first (onboard the client)")
        return client

    def add_client(
        self, name: str, tier: str, meta: Mapping[str, Any] | None = None, *, actor: str | None = None
    ) -> ClientRecord:
        if not name or not tier:
            raise LedgerError("a client needs a name and a tier")
        body = json_object(meta or {}, f"meta of client {name}")
        with self._write(actor) as tx:
            if self._live_client(tx.session, name) is not None:
                raise LedgerError(f"client {name!r} is already in the ledger", hint="remove it first to start over")
            client = Client(name=name, tier=tier, created_at=tx.now, meta=body)
            tx.session.add(client)
            tx.session.flush()
            tx.append("client.created", name, None, {"tier": tier, "meta": body})
            return client_record(client, [])

    def remove_client(self, name: str, *, actor: str | None = None) -> ClientRecord:
        """Mark the client and its live hosts removed. Rows stay for history; the name becomes free again."""
        with self._write(actor) as tx:
            client = self._require_client(tx.session, name)
            hosts = [h for h in client.hosts if h.removed_at is None]
            for host in hosts:
                host.removed_at = tx.now
            client.removed_at = tx.now
            tx.append("client.removed", name, None, {"hosts": [h.name for h in hosts]})
            return client_record(client, [])

    def client(self, name: str) -> ClientRecord | None:
        """The live client called ``name``, with its live hosts."""
        with self._read() as session:
            client = self._live_client(session, name)
            return None if client is None else client_record(client, live(client.hosts))

    def clients(self, include_removed: bool = False) -> list[ClientRecord]:
        query = select(Client).options(selectinload(Client.hosts)).order_by(Client.name, Client.id)
        if not include_removed:
            query = query.where(Client.removed_at.is_(None))
        with self._read() as session:
            return [client_record(c, live(c.hosts)) for c in session.scalars(query)]


def client_record(client: Client, hosts: Sequence[Host]) -> ClientRecord:
    return ClientRecord(
        id=client.id,
        name=client.name,
        tier=client.tier,
        meta=dict(client.meta),
        created_at=client.created_at,
        removed_at=client.removed_at,
        hosts=tuple(host_record(h) for h in hosts),
    )
