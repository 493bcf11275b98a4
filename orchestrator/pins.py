"""Pinning host keys: scan, compare with what is pinned, and (once a person confirmed) write and record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from . import remote
from .clients import ensure_client
from .errors import RemoteError
from .inventory import Host, Inventory
from .ledger import Ledger

PinState = Literal["new", "same", "changed", "error"]


@dataclass(frozen=True)
class PinRow:
    host: str
    address: str
    state: PinState
    key: remote.ScannedKey | None = None
    pinned_fingerprint: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class PinScan:
    client: str
    rows: tuple[PinRow, ...]

    @property
    def errors(self) -> list[PinRow]:
        return [r for r in self.rows if r.state == "error"]

    @property
    def changed(self) -> list[PinRow]:
        return [r for r in self.rows if r.state == "changed"]


def scan(inv: Inventory, hosts: Sequence[Host], timeout: float = remote.DEFAULT_TIMEOUT) -> PinScan:
    found: dict[str, remote.ScannedKey | RemoteError] = remote.parallel(
        hosts, lambda h: remote.scan_host_key(h, timeout), lambda _name, exc: exc
    )
    old = remote.pinned(inv) if inv.known_hosts.exists() else None
    rows: list[PinRow] = []
    for h in hosts:
        got = found[h.name]
        if isinstance(got, RemoteError):
            rows.append(PinRow(h.name, h.known_hosts_name, "error", error=got.message))
            continue
        before = remote.pinned_fingerprint(old, h) if old is not None else None
        state: PinState = "new" if before is None else "same" if before == got.fingerprint else "changed"
        rows.append(PinRow(h.name, h.known_hosts_name, state, got, before))
    return PinScan(inv.client, tuple(rows))


def apply(inv: Inventory, result: PinScan, ledger: Ledger) -> int:
    """Write every scanned key (refusing when any host could not be scanned) and record each change."""
    if result.errors:
        first = result.errors[0]
        raise RemoteError(f"could not fetch the key of {first.host}: {first.error}; nothing was pinned")
    keys = [r.key for r in result.rows if r.key is not None]
    ensure_client(ledger, inv)
    remote.write_pins(inv, keys)
    for row in result.rows:
        if row.state != "same" and row.key is not None:
            ledger.append_event(
                "host.key_pinned",
                inv.client,
                row.host,
                {"fingerprint": row.key.fingerprint, "key_type": row.key.key_type, "previous": row.pinned_fingerprint},
            )
    return len(keys)
