"""The errors of defence packs: one line naming the pack entry, file or key that is wrong."""

from __future__ import annotations

from ..errors import OrchestratorError


class DefenceError(OrchestratorError):
    """Raised when a defence pack cannot be built, read, verified or served: it names what is wrong."""


class DefenceInputError(DefenceError):
    """Raised when what the person gave (a version, a rules or blocklist file, an entry of it) is unusable: a usage
    problem, exit code 2 like the CLI's own usage errors."""

    exit_code = 2
