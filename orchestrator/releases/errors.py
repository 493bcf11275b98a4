"""The errors of releases and how their problems read: one line naming what is wrong, the rest counted."""

from __future__ import annotations

from pathlib import Path

from ..errors import OrchestratorError

LIST_HINT = "see 'sentryctl release list'"
MAX_PROBLEMS = 5  # shown in one error line; the rest are counted


class ReleaseError(OrchestratorError):
    """Raised when a release cannot be built, read or verified."""


def damaged(directory: Path, problem: str) -> ReleaseError:
    """A catalog folder that is not the release it should be."""
    return ReleaseError(
        f"release folder {directory} is damaged: {problem}",
        hint=f"check it with 'sentryctl release verify {directory}'; move it away if it is not a release",
    )


def problems_error(label: str, problems: list[str], hint: str | None = None) -> ReleaseError:
    """Every problem found in ``label`` as one error, the first :data:`MAX_PROBLEMS` named."""
    shown = "; ".join(problems[:MAX_PROBLEMS])
    more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
    return ReleaseError(
        f"{label}: {shown}{more}", hint=hint or "the bundle does not match its manifest: do not ship it"
    )
