"""Incidents: problems that need a person, opened by detection, paged through an escalation ladder per tier,
acknowledged and resolved by people; response-time compliance per client per month. A library: the CLI and the
collector call it, it never imports Click.

- :mod:`.hours` support hours as a schedule; :mod:`.policy` per-tier targets and ladders
- :mod:`.response` time to acknowledge/resolve and compliance per client per month
- :mod:`.detect` the pure detection rules, :mod:`.engine` one pass over the ledger
"""

from __future__ import annotations

from .response import Compliance, compliance

__all__ = ["Compliance", "compliance"]
