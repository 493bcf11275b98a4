"""The push tests' world: a real ledger on both backends (SQLite in tmp_path, PostgreSQL from SENTRY_TEST_PG_URL,
required with SENTRY_REQUIRE_PG=1), client inventories on disk, a pack recorded in the ledger, and a fake fleet:
agents that answer their assignment with crafted heartbeats and alerts, on a fake clock the executor reads too."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator import clients
from orchestrator.ledger import Ledger
from orchestrator.ledger.telemetry import IncomingRecord
from orchestrator.settings import Settings
from tests.integration.ledger.conftest import home, ledger_url, pg_admin, sql  # noqa: F401 - fixtures

START = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)  # a Monday


def pack_bytes(version: str) -> bytes:
    return f'{{"format":"sentry-pack/1","version":"{version}"}}'.encode()


def record_pack(ledger: Ledger, version: str) -> str:
    content = pack_bytes(version)
    digest = hashlib.sha256(content).hexdigest()
    ledger.record_pack(version, digest, b"s" * 64, content, rules_version=None, rule_count=0, blocklist_count=1)
    return digest


@dataclass
class Fleet:
    """Fake agents: each tick, every host not told otherwise sends a heartbeat reporting the pack assigned to it.

    ``behaviour[(client, host)]`` changes what one host does: "silent" (no heartbeat), "refuse" (reports the
    assigned pack refused), "slow" (detector over budget), "degraded", "stuck" (keeps its old pack), or a
    callable taking (fleet, client, host) for anything else."""

    ledger: Ledger
    now: dt.datetime = START
    step: float = 5.0
    behaviour: dict[tuple[str, str], Any] = field(default_factory=dict)
    on_tick: list[Callable[[Fleet], None]] = field(default_factory=list)
    ticks: int = 0
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def clock(self) -> dt.datetime:
        return self.now

    def beat(self, client: str, host: str, **fields: Any) -> None:
        a = self.ledger.assignment(client, host)
        record = {
            "status": "ok",
            "pack_version": a.version if a else None,
            "pack_digest": a.digest if a else None,
            "pack_status": "active" if a and a.version else "none",
            "detect_us_per_line": 12.0,
            **fields,
        }
        self.store(client, host, "heartbeat", record)

    def ban(self, client: str, host: str, ip: str, n: int = 1, *, action: str = "banned") -> None:
        for _ in range(n):
            self.store(client, host, "alert", {"rule": "game-bruteforce", "ip": ip, "action": action})

    def store(self, client: str, host: str, kind: str, record: dict[str, Any]) -> None:
        columns: dict[str, Any]
        if kind == "heartbeat":
            columns = {
                "event": record.get("event", "interval"),
                "status": record.get("status"),
                "interval_seconds": 30.0,
                "pack_version": record.get("pack_version"),
                "pack_digest": record.get("pack_digest"),
                "pack_status": record.get("pack_status"),
                "detect_us_per_line": record.get("detect_us_per_line"),
            }
        else:
            columns = {"rule": record["rule"], "ip": record["ip"], "action": record["action"], "severity": "high"}
        rec = IncomingRecord(kind, "boot1", next(self._seq), self.now, columns, {"type": kind, **record})
        self.ledger.store_batch(client, host, [rec], self.now)

    def tick(self) -> None:
        for a in self.ledger.assignments():
            how = self.behaviour.get((a.client, a.host))
            if how == "silent":
                continue
            if callable(how):
                how(self, a.client, a.host)
            elif how == "refuse" and a.digest is not None:
                self.beat(a.client, a.host, pack_version=None, pack_digest=None, pack_status="refused",
                          pack_refused_digest=a.digest, pack_error="signature does not verify")  # fmt: skip
            elif how == "slow":
                self.beat(a.client, a.host, detect_us_per_line=5000.0)
            elif how == "degraded":
                self.beat(a.client, a.host, status="degraded")
            elif how == "stuck":
                self.beat(a.client, a.host, pack_version=None, pack_digest=None, pack_status="none")
            else:
                self.beat(a.client, a.host)

    def wait(self, seconds: float) -> bool:
        """The executor's wait between polls: time passes, the agents answer. Never stops it (returns False)."""
        self.ticks += 1
        assert self.ticks < 1000, "the executor kept polling past any bound"
        self.now += dt.timedelta(seconds=seconds)
        self.tick()
        for hook in self.on_tick:
            hook(self)
        return False


@pytest.fixture
def settings(tmp_path: Path, ledger_url: str) -> Settings:  # noqa: F811 - the fixture imported above
    return Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv", db_url=ledger_url)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    with Ledger.open(settings.db_url, settings.home, actor="tester@ci") as opened:
        yield opened


def add_client(
    settings: Settings, ledger: Ledger, name: str, tier: str, hosts: int, *, window: str = "always",
    mgmt: str = "192.0.2.0/24", first: int = 1,
) -> list[str]:  # fmt: skip
    names = [f"{name[0]}{i}" for i in range(1, hosts + 1)]
    spec = clients.build_spec(
        name=name, tier=tier, hosts=[f"{n}=198.18.{first}.{i}" for i, n in enumerate(names, start=1)],
        mgmt_networks=[mgmt], window_text=window,
    )  # fmt: skip
    clients.create(settings, spec, ledger)
    return names


@pytest.fixture
def fleet(ledger: Ledger) -> Fleet:
    return Fleet(ledger)
