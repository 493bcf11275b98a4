"""Errors of the audit: an audit that cannot start or cannot finish exits with its own code."""

from __future__ import annotations

from ..errors import OrchestratorError

EXIT_COMPLIANT = 0
EXIT_DRIFT = 1
EXIT_NOT_AUDITED = 4  # 2 is Click's usage error and 3 a paused rollout


class AuditError(OrchestratorError):
    """Raised when an audit cannot start (bad waivers, no signing key, unknown client) or its bundle cannot be
    written. Exit code 4, like a host that could not be audited: the auditor has no complete answer."""

    exit_code = EXIT_NOT_AUDITED


class WaiverError(AuditError):
    """Raised when a waiver file is malformed, names an unknown check or host, or holds an expired waiver."""


class BundleError(AuditError):
    """Raised when an evidence bundle is not a bundle, is unsigned, or does not match its signed manifest."""

    exit_code = 1
