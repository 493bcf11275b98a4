"""The rollout's branch of the exception tree."""

from __future__ import annotations

from ..errors import OrchestratorError


class RolloutError(OrchestratorError):
    """Raised when a track file is invalid, a version cannot be read, or a rollout cannot be planned."""


class RolloutHalted(OrchestratorError):
    """Raised when a gate failed: the touched hosts were rolled back (see the message for the outcome)."""


class RolloutIncomplete(OrchestratorError):
    """Raised when a rollout ran to its end but left hosts without the release: they are kept pending."""


class RolloutPaused(OrchestratorError):
    """Raised when a rollout stopped without failing (window closed, interrupted): it can be resumed."""

    exit_code = 3


class RolloutLockLost(OrchestratorError):
    """Raised when another controller took this rollout's locks over (it judged this one dead): this controller
    stops at its next step and leaves the rollout to the one that holds it now."""
