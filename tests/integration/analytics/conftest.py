"""Analytics tests: figures and reports over real rows stored through the ledger's own API (store_batch), on
SQLite and PostgreSQL; the portal on a real collector process over TLS. The database and collector fixtures are
the collector tests' (imported, not copied)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from orchestrator.collector.schema import parse_record
from orchestrator.ledger import Ledger
from orchestrator.ledger.telemetry import IncomingRecord
from tests.integration.collector.conftest import db_url, pg_schema, pg_url  # noqa: F401 - fixtures and helpers

UTC = dt.UTC
ATTACKER = "203.0.113.66"
OTHER = "198.51.100.23"


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


class Feed:
    """Records of one host, numbered like an agent numbers them, stored through Ledger.store_batch."""

    def __init__(self, ledger: Ledger, client: str, host: str) -> None:
        self.ledger, self.client, self.host = ledger, client, host
        self.boot = secrets.token_hex(16)
        self.seq = 0

    def restart(self) -> None:
        self.boot, self.seq = secrets.token_hex(16), 0

    def _record(self, kind: str, when: dt.datetime, **extra: Any) -> IncomingRecord:
        raw = {"type": kind, "boot": self.boot, "seq": self.seq, "time": when.isoformat(), "host": self.host, **extra}
        self.seq += 1
        parsed = parse_record(raw, self.host)
        assert isinstance(parsed, IncomingRecord), parsed
        return parsed

    def alert(
        self,
        when: dt.datetime,
        ip: str,
        *,
        rule: str = "ssh-bruteforce",
        severity: str = "high",
        action: str = "banned",
        ban_seconds: int = 3600,
        count: int = 5,
    ) -> None:
        rec = self._record(
            "alert",
            when,
            rule=rule,
            source="auth",
            ip=ip,
            count=count,
            action=action,
            severity=severity,
            ban_seconds=ban_seconds,
            window_seconds=60,
        )
        self.ledger.store_batch(self.client, self.host, [rec], when + dt.timedelta(seconds=1))

    def heartbeats(
        self,
        start: dt.datetime,
        n: int,
        interval: int,
        firewall: list[tuple[int, int]] | None = None,
        bans_active: int = 0,
    ) -> None:
        """``n`` heartbeats ``interval`` seconds apart; ``firewall`` gives (packets, bytes) of one counter each."""
        records = []
        for i in range(n):
            fw = None if firewall is None else {"banned_v4": {"packets": firewall[i][0], "bytes": firewall[i][1]}}
            records.append(
                self._record(
                    "heartbeat",
                    start + dt.timedelta(seconds=i * interval),
                    event="interval",
                    interval_seconds=interval,
                    bans_active=bans_active,
                    firewall=fw,
                )
            )
        for i, rec in enumerate(records):
            self.ledger.store_batch(self.client, self.host, [rec], start + dt.timedelta(seconds=i * interval))


@pytest.fixture
def analytics_ledger(db_url: str, tmp_path: Path) -> Iterator[Ledger]:  # noqa: F811 - db_url is the fixture
    """acme (essentials tier: heartbeats every 60 s; hosts game1, game2) and rival (host r1), no telemetry yet."""
    with Ledger.open(db_url, tmp_path / "home", actor="tester@ci") as ledger:
        for client, hosts in (("acme", ["game1", "game2"]), ("rival", ["r1"])):
            ledger.add_client(client, "essentials", {})
            ledger.sync_hosts(client, [(h, f"10.0.0.{i + 1}", 22) for i, h in enumerate(hosts)])
        # The hosts joined before the months the tests look at (the ledger stamps them now): behind the API's back.
        engine = sa.create_engine(db_url, poolclass=NullPool)
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE hosts SET added_at = :t"), {"t": _stamp(db_url, dt.datetime(2026, 1, 1, tzinfo=UTC))}
            )
        engine.dispose()
        yield ledger


def _stamp(url: str, when: dt.datetime) -> object:
    # SQLite keeps naive UTC text as SQLAlchemy writes it (the ledger's UTCDateTime); PostgreSQL an aware time.
    return when.strftime("%Y-%m-%d %H:%M:%S.%f") if url.startswith("sqlite") else when
