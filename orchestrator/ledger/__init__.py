"""The ledger: the durable record of clients, hosts, releases, runs, rollouts and their locks, on-site training
sign-offs, and a hash-chained event log.

SQLite under the state directory by default, PostgreSQL when a URL says so; the schema is migrated on open.
Everything else in sentryctl persists through :class:`Ledger` and gets frozen records back.
"""

from __future__ import annotations

from .chain import GENESIS_HASH, VerifyReport, canonical_json, event_hash
from .errors import LedgerError, RolloutLocked, RolloutLockGone
from .records import (
    AUDIT_RESULTS,
    FINAL_ROLLOUT_STATES,
    NO_WAVE,
    ROLLOUT_HOST_STATUSES,
    ROLLOUT_STATES,
    ROLLOUT_TRANSITIONS,
    TRAINING_STATES,
    AuditRecord,
    ClientRecord,
    EventRecord,
    HostRecord,
    HostReleaseRecord,
    HostResult,
    HostSync,
    RolloutHostRecord,
    RolloutHostSpec,
    RolloutLockRecord,
    RolloutRecord,
    RunHostRecord,
    RunRecord,
    TrainingRecord,
)
from .store import Ledger, default_actor
from .urls import mask_url

__all__ = [
    "AUDIT_RESULTS",
    "FINAL_ROLLOUT_STATES",
    "GENESIS_HASH",
    "NO_WAVE",
    "ROLLOUT_HOST_STATUSES",
    "ROLLOUT_STATES",
    "ROLLOUT_TRANSITIONS",
    "TRAINING_STATES",
    "AuditRecord",
    "ClientRecord",
    "EventRecord",
    "HostRecord",
    "HostReleaseRecord",
    "HostResult",
    "HostSync",
    "Ledger",
    "LedgerError",
    "RolloutHostRecord",
    "RolloutHostSpec",
    "RolloutLockGone",
    "RolloutLockRecord",
    "RolloutLocked",
    "RolloutRecord",
    "RunHostRecord",
    "RunRecord",
    "TrainingRecord",
    "VerifyReport",
    "canonical_json",
    "default_actor",
    "event_hash",
    "mask_url",
]
