"""The release track names, defined once: a leaf module (it imports nothing of ours) so that releases, the
ledger and the rollout planner all take them from here without importing one another.

A track's behaviour (waves, soak, gates) is data (``orchestrator/data/tracks.yml``, see
:mod:`orchestrator.rollout.tracks`); only the names, and which one needs on-site training, are code.
"""

from __future__ import annotations

from typing import Final, Literal

TrackName = Literal["hotfix", "feature"]

HOTFIX: Final = "hotfix"  # remote, canary first, never waits for training
FEATURE: Final = "feature"  # only for clients trained on site
TRACK_NAMES: Final[tuple[TrackName, ...]] = (HOTFIX, FEATURE)
