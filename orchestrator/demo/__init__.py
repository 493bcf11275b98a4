"""The demo: the whole story of sentryctl on the local lab, told through the same core API the commands use.

Two clients of different tiers on four lab hosts: ``acme`` (professional, three hosts) and ``nightowl``
(enterprise, 24/7, one host). Their keys are pinned, every host is preflighted and provisioned; a signed
hotfix goes canary -> waves with gates; a deliberately broken hotfix halts at the canary and is rolled back
automatically; a feature release reaches only the client whose on-site training was signed off; an attack on
one host gets its source banned; both clients are audited and their evidence bundles written.

The demo sits above the core (only the CLI imports it; .importlinter holds that): the story is data
(:mod:`.story`: each step's name, text and the function that performs it), the steps are grouped by concern
(:mod:`.steps`), they share a :class:`~.stage.Stage`, and :mod:`.run` loops over them. Everything happens in a
workspace of its own (:mod:`.workspace`), so the demo never touches real clients or the real ledger. Progress
goes through a callback (:class:`DemoEvent`), so the core prints nothing.

Each step checks what it claims (versions on hosts, the ban, untouched hosts) and raises :class:`DemoError`
when the world disagrees, so the demo doubles as an end-to-end check.
"""

from __future__ import annotations

from .cast import CLIENTS, LAB_HOSTS
from .records import DemoError, DemoEvent, DemoReport
from .run import run_demo
from .story import STEPS, STORY
from .workspace import down, workspace_settings

__all__ = [
    "CLIENTS",
    "LAB_HOSTS",
    "STEPS",
    "STORY",
    "DemoError",
    "DemoEvent",
    "DemoReport",
    "down",
    "run_demo",
    "workspace_settings",
]
