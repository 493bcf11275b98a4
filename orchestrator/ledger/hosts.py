"""Hosts in the ledger: each live client's hosts (name, address, port), synced to what its inventory says."""

from __future__ import annotations

from collections.abc import Sequence

from .base import LedgerMixin
from .errors import LedgerError
from .models import Host
from .records import HostRecord, HostSync


class HostsMixin(LedgerMixin):
    """Hosts of clients; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def sync_hosts(self, client: str, hosts: Sequence[tuple[str, str, int]], *, actor: str | None = None) -> HostSync:
        """Make the client's live hosts exactly ``hosts`` (name, address, port): add the new ones, update changed
        addresses or ports, mark the missing ones removed. One event per change; nothing when nothing changed."""
        wanted: dict[str, tuple[str, int]] = {}
        for name, address, port in hosts:
            if name in wanted:
                raise LedgerError(f"host {name!r} is listed twice for client {client!r}")
            if not name or not address or not 0 < port < 65536:
                raise LedgerError(f"host {name!r} of client {client!r} needs a name, an address and a valid port")
            wanted[name] = (address, port)

        added: list[str] = []
        updated: list[str] = []
        removed: list[str] = []
        with self._write(actor) as tx:
            record = self._require_client(tx.session, client)
            live = {h.name: h for h in record.hosts if h.removed_at is None}
            for name, host in sorted(live.items()):
                if name not in wanted:
                    host.removed_at = tx.now
                    removed.append(name)
                    tx.append("host.removed", client, name, {"address": host.address, "port": host.port})
            for name, (address, port) in sorted(wanted.items()):
                existing = live.get(name)
                if existing is None:
                    tx.session.add(Host(client_id=record.id, name=name, address=address, port=port, added_at=tx.now))
                    added.append(name)
                    tx.append("host.added", client, name, {"address": address, "port": port})
                elif (existing.address, existing.port) != (address, port):
                    before = {"address": existing.address, "port": existing.port}
                    existing.address, existing.port = address, port
                    updated.append(name)
                    tx.append("host.updated", client, name, {"address": address, "port": port, "previous": before})
            tx.session.flush()
        return HostSync(tuple(added), tuple(updated), tuple(removed))

    def hosts(self, client: str, include_removed: bool = False) -> list[HostRecord]:
        """Hosts of the live client ``client``; with ``include_removed``, also the ones it had before."""
        with self._read() as session:
            record = self._require_client(session, client)
            rows = record.hosts if include_removed else live(record.hosts)
            return [host_record(h) for h in rows]


def live(hosts: Sequence[Host]) -> list[Host]:
    return [h for h in hosts if h.removed_at is None]


def host_record(host: Host) -> HostRecord:
    return HostRecord(host.name, host.address, host.port, host.added_at, host.removed_at)
