"""Shared fixtures for the agent's tests.

The agent is not an installed package (it ships as a release directory), so ``agent/`` goes on sys.path.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

AGENT_DIR = Path(__file__).resolve().parents[3] / "agent"
if str(AGENT_DIR) not in sys.path:
    sys.path.insert(0, str(AGENT_DIR))

from sentry_agent.rules import Rule  # noqa: E402 - needs the sys.path entry above

from .agent_helpers import FakeClock  # noqa: E402


@pytest.fixture
def agent_dir() -> Path:
    return AGENT_DIR


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_rule() -> Callable[..., Rule]:
    def make(**overrides: Any) -> Rule:
        values: dict[str, Any] = {
            "id": "game-bruteforce",
            "source": "game",
            "pattern": re.compile(r"LOGIN FAILED user=\S+ ip=(?P<ip>[0-9a-fA-F:.]+)"),
            "threshold": 3,
            "window_seconds": 10,
            "ban_seconds": 100,
        }
        values.update(overrides)
        return Rule(**values)

    return make


@pytest.fixture
def config_dict(tmp_path: Path) -> dict[str, Any]:
    """A valid config for a host with one game log, everything under tmp_path, nft disabled."""
    return {
        "client": "acme",
        "tier": "professional",
        "host": "game-01",
        "listen_address": "127.0.0.1",
        "listen_port": 0,
        "sources": [{"name": "game", "path": str(tmp_path / "login.log")}],
        "never_ban": ["10.0.0.0/8"],
        "ban_command_enabled": False,
        "spool_dir": str(tmp_path / "spool"),
        "state_dir": str(tmp_path / "state"),
        "heartbeat_interval_seconds": 30,
        "poll_interval_seconds": 0.02,
    }
