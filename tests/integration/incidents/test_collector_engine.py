"""The engine inside ``sentryctl collector serve`` (a real process over TLS, real clock): an attack reported to
the collector pages a person within 60 s, 500 alerts of it give one incident and one page; and the dead-man
heartbeat pings an outside target while the collector runs and stops when it is killed."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import vault
from orchestrator.collector.tokens import token_sha256
from orchestrator.inventory import load
from orchestrator.ledger import Ledger
from orchestrator.settings import Settings

from ..collector.conftest import Collector, boot_id, free_port, prepare, record
from ..telemetry.conftest import wait_for
from .conftest import set_config
from .receiver import Receiver, receiver

PAGE_WITHIN_S = 60


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


@pytest.fixture
def paging_collector(
    db_url: str, tmp_path: Path, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Collector]:
    """The collector fixture's clients plus ``ent`` (enterprise: 24/7, so the page never waits for office
    hours), whose inventory pages the receiver."""
    collector = prepare(tmp_path / "home", db_url, free_port())
    settings = Settings(home=collector.home, inventories=collector.inventories, db_url=db_url)
    d = collector.inventories / "ent"
    d.mkdir(parents=True)
    (d / "hosts.yml").write_text("all:\n  hosts:\n    e1: {ansible_host: 10.0.1.1}\n")
    (d / "client.yml").write_text("client: ent\ntier: enterprise\npaging:\n  primary: paging_primary\n")
    collector.tokens["ent"] = "ent-token-" + boot_id()
    with Ledger.open(db_url, collector.home, actor="tester") as ledger:
        ledger.add_client("ent", "enterprise", {})
        ledger.sync_hosts("ent", [("e1", "10.0.1.1", 22)])
        ledger.register_collector_token("ent", token_sha256(collector.tokens["ent"]))
        vault.set_secret(settings, load(collector.inventories, "ent"), "paging_primary", hook.url("ent"), ledger)
    set_config(collector, incidents_tick_seconds=1)
    monkeypatch.setenv("SENTRY_INVENTORIES", str(collector.inventories))  # the collector process reads its env
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()


def test_an_attack_pages_within_60_s_and_500_alerts_are_one_incident_and_one_page(
    paging_collector: Collector, hook: Receiver
) -> None:
    boot = boot_id()
    alerts = [
        record("alert", "e1", boot, n, rule="game-bruteforce", ip="198.51.100.7", severity="critical")
        for n in range(500)
    ]
    started = time.monotonic()
    for first in range(0, 500, 100):
        assert paging_collector.ingest("e1", alerts[first : first + 100], client="ent").status == 200
    (page,) = hook.wait_for(1, timeout=PAGE_WITHIN_S)
    assert time.monotonic() - started < PAGE_WITHIN_S
    assert page[0] == "/ent" and "game-bruteforce attack" in page[1]["title"]

    # Every alert is counted into the one incident, and no second page follows.
    def incidents() -> list[dict[str, object]]:
        out = paging_collector.sentryctl("incidents", "list", "--client", "ent", "--json").stdout
        return json.loads(out)

    listed = wait_for("all 500 alerts counted", lambda: (i := incidents()) and i[0]["occurrences"] == 500 and i, 30)
    assert [(i["kind"], i["occurrences"], i["hosts"]) for i in listed] == [("attack", 500, ["e1"])]
    assert [p["state"] for p in listed[0]["pages"]] == ["sent"]
    time.sleep(3)  # three more engine passes (1 s each) over nothing new
    assert len(hook.pages) == 1


def test_the_dead_man_heartbeat_pings_while_the_collector_runs_and_stops_when_it_is_killed(
    db_url: str, tmp_path: Path, hook: Receiver
) -> None:
    collector = prepare(tmp_path / "home", db_url, free_port())
    set_config(collector, deadman_url=f"http://127.0.0.1:{hook.port}/ping/abc", deadman_interval_seconds=0.5)
    collector.start()
    try:
        wait_for("three dead-man pings", lambda: hook.pings >= 3, 30, 0.1)
    finally:
        collector.stop(signal.SIGKILL)
    after_kill = hook.pings
    time.sleep(2.0)  # four intervals: a live collector would have pinged 4 times
    assert hook.pings == after_kill
