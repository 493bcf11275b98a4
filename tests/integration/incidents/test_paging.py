"""Paging through real Apprise to a real webhook receiver on loopback, URLs from the clients' real vaults, on
SQLite and PostgreSQL, with an injected clock: the enterprise ladder at 0/10/20 min and the breach at 30; an
acknowledgement stops it; a receiver that is down is retried with backoff and the page is never lost (and shows
pending in ``incidents list --json``); an essentials client out of hours gets no page until its hours begin; two
engines on one PostgreSQL page once."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator import vault
from orchestrator.incidents.engine import Engine, engine_for
from orchestrator.incidents.policy import policy_for
from orchestrator.inventory import load
from orchestrator.ledger import Ledger
from orchestrator.ledger.incidents import IncidentSpec
from orchestrator.settings import Settings

from .receiver import Receiver, receiver

SENTRYCTL = str(Path(sys.executable).parent / "sentryctl")
# Saturday 2026-12-12 12:00 UTC: enterprise (24/7) pages now; essentials (Mon-Fri 08-20 CET) waits for Monday.
SAT = dt.datetime(2026, 12, 12, 12, 0, tzinfo=dt.UTC)
MONDAY_8_CET = dt.datetime(2026, 12, 14, 7, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


@dataclass
class Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Setup:
    settings: Settings
    ledger: Ledger
    receiver: Receiver
    clock: Clock

    def engine(self, ledger: Ledger | None = None, actor: str = "collector") -> Engine:
        return engine_for(ledger or self.ledger, self.settings, clock=self.clock, actor=actor)

    def open(self, client: str, key: str = "attack:game-bruteforce") -> int:
        tier = {"acme": "enterprise", "globex": "essentials"}[client]
        spec = IncidentSpec(
            client=client,
            tier=tier,
            kind="attack",
            severity="critical",
            dedup_key=key,
            title="game-bruteforce attack",
            hosts=("game1",),
            due_at=policy_for(tier).due_at(self.clock.now),
        )
        return self.ledger.apply_detection([spec], {}, at=self.clock.now).opened[0].id

    def sentryctl(self, *args: str) -> str:
        env = {
            **os.environ,
            "SENTRY_HOME": str(self.settings.home),
            "SENTRY_INVENTORIES": str(self.settings.inventories),
            "SENTRY_DB_URL": str(self.settings.db_url),
            "COLUMNS": "250",  # wide: table cells are not cut
        }
        done = subprocess.run([SENTRYCTL, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout


def write_client(settings: Settings, ledger: Ledger, client: str, tier: str, hook: Receiver) -> None:
    d = settings.inventories / client
    d.mkdir(parents=True)
    (d / "hosts.yml").write_text("all:\n  hosts:\n    game1: {ansible_host: 10.0.0.1}\n")
    (d / "client.yml").write_text(
        f"client: {client}\ntier: {tier}\npaging:\n  primary: paging_primary\n  second_line: paging_second_line\n"
    )
    ledger.add_client(client, tier, {})
    ledger.sync_hosts(client, [("game1", "10.0.0.1", 22)])
    inv = load(settings.inventories, client)
    vault.set_secret(settings, inv, "paging_primary", hook.url(f"{client}/primary"), ledger)
    vault.set_secret(settings, inv, "paging_second_line", hook.url(f"{client}/second"), ledger)


@pytest.fixture
def setup(db_url: str, tmp_path: Path) -> Iterator[Setup]:
    settings = Settings(home=tmp_path / "home", inventories=tmp_path / "inventories", db_url=db_url)
    settings.ensure_home()
    with receiver() as hook, Ledger.open(db_url, settings.home, actor="tester") as ledger:
        write_client(settings, ledger, "acme", "enterprise", hook)
        write_client(settings, ledger, "globex", "essentials", hook)
        yield Setup(settings, ledger, hook, Clock(SAT))


def steps(s: Setup, iid: int) -> list[str]:
    return [x.step for x in s.ledger.incident_steps(iid)]


def test_enterprise_escalates_at_0_10_20_and_records_the_breach_at_30(setup: Setup) -> None:
    s, engine = setup, setup.engine()
    iid = s.open("acme")
    engine.tick()
    assert s.receiver.paths() == ["/acme/primary"]
    title = s.receiver.pages[0][1]["title"]
    assert f"incident {iid} of acme" in title and "game-bruteforce" in title
    s.clock.now = SAT + 10 * MIN - dt.timedelta(seconds=1)
    engine.tick()
    assert s.receiver.paths() == ["/acme/primary"]  # not a second early
    s.clock.now = SAT + 10 * MIN
    engine.tick()
    assert s.receiver.paths() == ["/acme/primary"] * 2
    s.clock.now = SAT + 20 * MIN
    engine.tick()
    assert s.receiver.paths() == ["/acme/primary"] * 2 + ["/acme/second"]
    s.clock.now = SAT + 30 * MIN
    engine.tick()
    engine.tick()
    assert len(s.receiver.paths()) == 3  # the breach is recorded, nobody more to page
    assert steps(s, iid) == [
        "opened", "page_queued", "paged", "escalated", "paged", "escalated", "paged", "breach",
    ]  # fmt: skip
    breach = [e for e in s.ledger.events("acme") if e.kind == "incident.breach"]
    assert len(breach) == 1 and breach[0].payload["seconds_past_due"] == 0.0
    assert s.ledger.verify().ok


def test_an_acknowledgement_stops_the_ladder(setup: Setup) -> None:
    s, engine = setup, setup.engine()
    iid = s.open("acme")
    engine.tick()
    s.ledger.ack_incident(iid, by="alice", at=SAT + 3 * MIN)
    for minutes in (10, 20, 30, 60):
        s.clock.now = SAT + minutes * MIN
        engine.tick()
    assert s.receiver.paths() == ["/acme/primary"]
    assert steps(s, iid) == ["opened", "page_queued", "paged", "acked"]


def test_a_receiver_that_is_down_is_retried_with_backoff_and_the_page_is_never_lost(setup: Setup) -> None:
    s, engine = setup, setup.engine()
    s.receiver.down = True
    iid = s.open("acme")
    engine.tick()
    assert s.receiver.refused == 1 and s.receiver.paths() == []
    listed = json.loads(s.sentryctl("incidents", "list", "--state", "open", "--json"))
    (page,) = listed[0]["pages"]
    assert (page["state"], page["attempts"], page["target"]) == ("pending", 1, "primary")
    assert "did not take the page" in page["last_error"] and "127.0.0.1" not in page["last_error"]
    assert "pending" in s.sentryctl("incidents", "list")
    engine.tick()  # within the backoff: not tried again
    assert s.receiver.refused == 1
    s.clock.now = SAT + dt.timedelta(seconds=5)
    engine.tick()  # 5 s after the first failure: tried, still down
    assert s.receiver.refused == 2
    s.clock.now = SAT + dt.timedelta(seconds=14)
    engine.tick()  # 10 s backoff after the second failure not over yet
    assert s.receiver.refused == 2
    s.receiver.down = False
    s.clock.now = SAT + dt.timedelta(seconds=15)
    engine.tick()
    assert s.receiver.paths() == ["/acme/primary"]
    (page,) = json.loads(s.sentryctl("incidents", "show", str(iid), "--json"))["pages"]
    assert (page["state"], page["attempts"], page["last_error"]) == ("sent", 3, None)
    assert steps(s, iid) == ["opened", "page_queued", "page_failed", "page_failed", "paged"]
    # No secret reached the ledger: neither the timeline nor the chain carries the URL.
    assert all("127.0.0.1" not in json.dumps(e.payload) for e in s.ledger.events())


def test_an_essentials_client_out_of_hours_gets_no_page_until_its_hours_begin(setup: Setup) -> None:
    s, engine = setup, setup.engine()
    iid = s.open("globex")
    assert s.ledger.incident(iid).due_at == MONDAY_8_CET + dt.timedelta(minutes=240)
    for moment in (SAT, SAT + dt.timedelta(hours=20), MONDAY_8_CET - dt.timedelta(seconds=1)):
        s.clock.now = moment
        engine.tick()
    assert s.receiver.paths() == [] and steps(s, iid) == ["opened"]
    s.clock.now = MONDAY_8_CET
    engine.tick()
    assert s.receiver.paths() == ["/globex/primary"]


def test_two_engines_on_one_postgresql_page_once(setup: Setup) -> None:
    s = setup
    if s.ledger.dialect != "postgresql":
        pytest.skip("two collector processes share a PostgreSQL ledger, not a SQLite file")
    ids = [s.open("acme", key=f"attack:r:{n}") for n in range(5)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            with Ledger.open(s.settings.db_url, s.settings.home, actor=name) as mine:
                engine = s.engine(mine, actor=name)
                barrier.wait(10)
                for _ in range(5):
                    engine.tick()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"collector-{n}",)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(s.receiver.paths()) == ["/acme/primary"] * 5
    for iid in ids:
        assert steps(s, iid) == ["opened", "page_queued", "paged"]
