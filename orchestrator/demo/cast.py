"""The demo's cast and props: two clients of different tiers, the versions it ships, the attacker, and tracks
tuned for an audience."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LAB_HOSTS = 4
DEFAULT_LAB = "demo"
HOTFIX, BROKEN, FEATURE = "1.0.1", "1.0.2", "1.1.0"
TRAINING_MODULE = "ops-dashboard-101"
TRAINER = "Lea Trainer"
ATTACKER = "198.51.100.77"  # TEST-NET-2: never a real address
GAME_LOG = "/var/log/sentry-game/login.log"
BAN_TIMEOUT = 20.0

# The demo's tracks: the shipped gates, without the soak between waves (the real tracks wait 20-60 s after each
# wave; a demo has an audience), and the feature release in two waves. A broken agent fails its health wait in
# 12 s, not 60.
HOTFIX_WAVES = [
    {"name": "canary", "hosts_per_client": 1},
    {"name": "early", "percent": 50},
    {"name": "rest", "percent": 100},
]
FEATURE_WAVES = [{"name": "canary", "hosts_per_client": 1}, {"name": "rest", "percent": 100}]
DEMO_TRACKS: dict[str, Any] = {
    "hotfix": {"waves": HOTFIX_WAVES, "soak_seconds": 0, "health_timeout_seconds": 30},
    "feature": {"waves": FEATURE_WAVES, "soak_seconds": 0, "health_timeout_seconds": 30},
}
DEMO_GROUP_VARS = "sentry_agent_health_retries: 6\nsentry_agent_health_delay: 2\n"


@dataclass(frozen=True)
class DemoClient:
    name: str
    tier: str
    hosts: tuple[str, ...]  # host names in the client's inventory, in lab order
    contact: str
    window: str = "always"


CLIENTS = (
    DemoClient("acme", "professional", ("game-1", "game-2", "game-3"), "Ana Ops <ana@acme.example>"),
    DemoClient("nightowl", "enterprise", ("arena-1",), "Nico Night <nico@nightowl.example>"),
)
