"""The story as data: each step's name, the line that announces it, and the function that performs it, in the
order they are told. The runner (:mod:`.run`) only loops over :data:`STORY`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .cast import BROKEN, FEATURE, HOTFIX, LAB_HOSTS
from .stage import Stage
from .steps import fleet, releases, security, telemetry


@dataclass(frozen=True)
class Step:
    name: str
    text: str
    perform: Callable[[Stage], None]


STORY: tuple[Step, ...] = (
    Step("lab", f"Bring up {LAB_HOSTS} lab hosts", fleet.lab_up),
    Step("onboard", "Onboard two clients of different tiers", fleet.onboard),
    Step("pin", "Pin every host's SSH key", fleet.pin),
    Step("preflight", "Preflight every host", fleet.preflight_all),
    Step("collector", "Start Sentry's collector on the lab bridge address", telemetry.start_collector),
    Step("provision", "Provision the protection stack (every agent wired to the collector)", fleet.provision_all),
    Step("hotfix", f"Ship signed hotfix {HOTFIX}: canary, then waves, with gates", releases.hotfix),
    Step("broken", f"Ship a broken hotfix {BROKEN}: the canary gate fails, automatic rollback", releases.broken),
    Step("feature", f"Feature release {FEATURE}: only the client trained on site gets it", releases.feature),
    Step("attack", "Simulate an attack on one host", security.attack),
    Step("audit", "Audit both clients and write the evidence bundles", security.audit),
    Step("telemetry", "The agents report home: the attack's alert, a host turning silent", telemetry.reports_home),
)

# (name, text) of each step, for those that show the story without telling it (the CLI, the tests).
STEPS: tuple[tuple[str, str], ...] = tuple((s.name, s.text) for s in STORY)
