"""The one exception tree of the orchestrator.

Every error the core expects to happen is an :class:`OrchestratorError`. The CLI turns it into one line on
stderr and its ``exit_code``; anything else is a bug and gets a short line plus a traceback in the debug log.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base of every expected failure. ``hint`` names the fix, shown after the message."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(OrchestratorError):
    """Raised when settings, the state directory or an option value cannot be used."""


class InventoryError(OrchestratorError):
    """Raised when a client inventory is missing, malformed or inconsistent."""


class PrerequisiteError(OrchestratorError):
    """Raised when the machine lacks something a command needs (root, a Debian package, a kernel feature)."""


class LabError(OrchestratorError):
    """Raised when lab hosts cannot be created, reached or removed."""


class RunnerError(OrchestratorError):
    """Raised when a playbook cannot be started or its run cannot be interpreted."""


class RunCancelled(RunnerError):
    """Raised when a run was cancelled through the cancel callback before it finished."""


class RemoteError(OrchestratorError):
    """Raised when an SSH connection or remote command fails."""


class HostKeyMismatch(RemoteError):
    """Raised when a host presents a key other than the pinned one; all work on that host stops."""

    def __init__(self, host: str, expected: str, found: str) -> None:
        super().__init__(
            f"host key of {host} changed: pinned {expected}, presented {found}",
            hint="if the change is legitimate, re-pin with 'sentryctl hosts pin'",
        )
        self.host = host
        self.expected = expected
        self.found = found


class VersionError(OrchestratorError):
    """Raised when a release version cannot be read as MAJOR.MINOR.PATCH[-pre][+build]."""
