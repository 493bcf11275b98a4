"""The audit: testinfra checks that compare every host with what the ledger and the inventory say, a check-mode
run of the site playbook for drift, and a signed evidence bundle per audit. See :func:`run_audit`."""

from __future__ import annotations

from .bundle import BundleCheck
from .bundle import verify as verify_bundle
from .errors import EXIT_COMPLIANT, EXIT_DRIFT, EXIT_NOT_AUDITED, AuditError, BundleError, WaiverError
from .records import AuditOutcome, CheckResult, HostReport
from .service import all_check_ids, check_catalog, run_audit

__all__ = [
    "EXIT_COMPLIANT",
    "EXIT_DRIFT",
    "EXIT_NOT_AUDITED",
    "AuditError",
    "AuditOutcome",
    "BundleCheck",
    "BundleError",
    "CheckResult",
    "HostReport",
    "WaiverError",
    "all_check_ids",
    "check_catalog",
    "run_audit",
    "verify_bundle",
]
