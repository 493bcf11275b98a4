"""The analytics' errors, in the project's one exception tree."""

from __future__ import annotations

from ..errors import OrchestratorError


class AnalyticsError(OrchestratorError):
    """Raised when figures cannot be computed: an unknown client or host."""


class PeriodError(AnalyticsError):
    """Raised when a period is malformed, in the future, or longer than figures are computed over."""

    exit_code = 2
