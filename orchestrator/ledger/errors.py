"""The ledger's branch of the one exception tree."""

from __future__ import annotations

from ..errors import OrchestratorError


class LedgerError(OrchestratorError):
    """Raised when the ledger cannot be opened, migrated, read or written, or a request contradicts its records
    (an unknown client, a duplicate run id, a schema newer than this sentryctl)."""
