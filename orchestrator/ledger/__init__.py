"""The ledger: the durable record of clients, hosts, releases, runs and a hash-chained event log.

SQLite under the state directory by default, PostgreSQL when a URL says so; the schema is migrated on open.
Everything else in sentryctl persists through :class:`Ledger` and gets frozen records back.
"""

from __future__ import annotations

from .chain import GENESIS_HASH, VerifyReport, canonical_json, event_hash
from .errors import LedgerError
from .records import (
    ClientRecord,
    EventRecord,
    HostRecord,
    HostReleaseRecord,
    HostResult,
    HostSync,
    RunHostRecord,
    RunRecord,
)
from .store import Ledger, default_actor
from .urls import mask_url

__all__ = [
    "GENESIS_HASH",
    "ClientRecord",
    "EventRecord",
    "HostRecord",
    "HostReleaseRecord",
    "HostResult",
    "HostSync",
    "Ledger",
    "LedgerError",
    "RunHostRecord",
    "RunRecord",
    "VerifyReport",
    "canonical_json",
    "default_actor",
    "event_hash",
    "mask_url",
]
