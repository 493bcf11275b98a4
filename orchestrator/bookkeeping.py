"""Keeping the ledger in step with the inventories: the inventory says which hosts a client has, the ledger
remembers it (and everything done to them)."""

from __future__ import annotations

from .inventory import Inventory
from .ledger import Ledger


def ensure_client(ledger: Ledger, inv: Inventory) -> None:
    """Make the ledger know this client and exactly the inventory's hosts (a lab client is never 'new'd)."""
    record = ledger.client(inv.client)
    tier = inv.tier or "unknown"
    if record is None:
        ledger.add_client(inv.client, tier, dict(inv.meta))
    elif record.tier != tier:
        # The ledger keeps the old record as history; the live one carries the new tier.
        ledger.remove_client(inv.client)
        ledger.add_client(inv.client, tier, dict(inv.meta))
    ledger.sync_hosts(inv.client, [(h.name, h.address, h.port) for h in inv.hosts])
