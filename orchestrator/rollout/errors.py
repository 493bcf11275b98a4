"""The rollout's branch of the exception tree."""

from __future__ import annotations

from ..errors import OrchestratorError


class RolloutError(OrchestratorError):
    """Raised when a track file is invalid, a version cannot be read, or a rollout cannot be planned."""
