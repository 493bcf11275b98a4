"""``sentryctl fleet`` over what a real collector stored: online, silent (by the receive clock, against the interval
Sentry expects), never seen; every column of the status; alerts by client and host."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from orchestrator.tiers import get_tier

from .conftest import Collector, boot_id, record

EXPECTED = get_tier("professional").heartbeat_interval_seconds  # the fixture's clients are professional


def fleet(collector: Collector, *args: str) -> Any:
    return json.loads(collector.sentryctl("fleet", *args, "--json").stdout)


def status(collector: Collector, *args: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["client"], r["host"]): r for r in fleet(collector, "status", *args)}


def test_fleet_status_reports_every_column_and_judges_silence_by_the_receive_clock(collector: Collector) -> None:
    boot = boot_id()
    # game1's clock is hours off; its state and age still come from the receive time.
    batch = [
        record("heartbeat", "game1", boot, 0, time_="2026-01-01T00:00:00Z", spool_records=4, version="1.2.3"),
        record("alert", "game1", boot, 1),
    ]
    before = dt.datetime.now(dt.UTC)
    assert collector.ingest("game1", batch).status == 200
    assert (
        collector.ingest("r1", [record("heartbeat", "r1", boot_id(), 0, version="1.2.4")], client="rival").status == 200
    )

    rows = status(collector)
    g1 = rows[("acme", "game1")]
    assert (g1["state"], g1["version"], g1["rules_digest"], g1["spool_records"]) == ("online", "1.2.3", "ab" * 32, 4)
    assert g1["alerts_last_hour"] == 1 and g1["expected_interval_seconds"] == EXPECTED
    last = dt.datetime.fromisoformat(g1["last_heartbeat"])
    assert before - dt.timedelta(seconds=5) <= last <= dt.datetime.now(dt.UTC)
    assert 0 <= g1["age_seconds"] < 60
    assert rows[("acme", "game2")] | {"client": None} == {
        "client": None, "host": "game2", "state": "never seen", "expected_interval_seconds": EXPECTED,
        "last_heartbeat": None, "age_seconds": None, "version": None, "rules_digest": None, "spool_records": None,
        "alerts_last_hour": 0, "pack_version": None, "pack_digest": None, "pack_status": None,
        "assigned_version": None, "assigned_digest": None, "pack_matches": "",
    }  # fmt: skip
    assert (rows[("rival", "r1")]["state"], rows[("rival", "r1")]["version"]) == ("online", "1.2.4")
    assert set(status(collector, "--client", "acme")) == {("acme", "game1"), ("acme", "game2")}

    # The heartbeat aged by the collector's clock: the age follows, and past 3 intervals the host is silent.
    collector.age("telemetry_heartbeats", 2 * EXPECTED, "host = 'game1'")
    g1 = status(collector, "--client", "acme")[("acme", "game1")]
    assert g1["state"] == "online" and 2 * EXPECTED <= g1["age_seconds"] < 2 * EXPECTED + 60
    collector.age("telemetry_heartbeats", 3 * EXPECTED + 1, "host = 'game1'")
    assert status(collector, "--client", "acme")[("acme", "game1")]["state"] == "silent"


def test_a_host_claiming_a_long_interval_still_turns_silent_after_three_expected_ones(collector: Collector) -> None:
    boot = boot_id()
    # The longest interval the collector stores; the tier says 30 s, and the tier is what Sentry sells.
    assert collector.ingest("game2", [record("heartbeat", "game2", boot, 0, interval_seconds=86_400)]).status == 200
    assert status(collector, "--client", "acme")[("acme", "game2")]["state"] == "online"
    collector.age("telemetry_heartbeats", 3 * EXPECTED + 1, "host = 'game2'")
    assert status(collector, "--client", "acme")[("acme", "game2")]["state"] == "silent"
    # Beyond the bound (or not finite) the heartbeat is rejected, not stored; the host stays silent.
    for claim in ("1e9", "Infinity", "NaN"):
        raw = json.dumps(record("heartbeat", "game2", boot, 1)).replace(
            '"interval_seconds": 30', f'"interval_seconds": {claim}'
        )
        answer = collector.ingest("game2", [json.loads(raw)])
        assert answer.status == 200 and answer.body["stored"] == 0, answer
        assert "'interval_seconds' must be a number from 0 to 86400" in answer.body["rejected"][0]["reason"]
    assert status(collector, "--client", "acme")[("acme", "game2")]["state"] == "silent"


def test_fleet_status_as_a_table(collector: Collector) -> None:
    assert collector.ingest("game1", [record("heartbeat", "game1", boot_id(), 0, spool_records=7)]).status == 200
    out = collector.sentryctl("fleet", "status", "--client", "acme").stdout
    game1 = next(line for line in out.splitlines() if "game1" in line)
    for cell in ("acme", "online", "1.2.3", "ab" * 6, " 7 "):
        assert cell in game1, out
    assert "ab" * 7 not in game1  # the digest is shortened to 12 characters
    game2 = next(line for line in out.splitlines() if "game2" in line)
    assert "never seen" in game2, out


def test_fleet_alerts_by_client_host_and_since(collector: Collector) -> None:
    boot1, boot2 = boot_id(), boot_id()
    assert collector.ingest("game1", [record("alert", "game1", boot1, 0, ip="198.51.100.1")]).status == 200
    assert collector.ingest("game2", [record("alert", "game2", boot2, 0, ip="198.51.100.2")]).status == 200
    assert collector.ingest("r1", [record("alert", "r1", boot_id(), 0)], client="rival").status == 200

    def ips(*args: str) -> list[tuple[str, str]]:
        return [(a["host"], a["ip"]) for a in fleet(collector, "alerts", "--client", "acme", *args)]

    assert ips() == [("game1", "198.51.100.1"), ("game2", "198.51.100.2")]
    assert ips("--host", "game2") == [("game2", "198.51.100.2")]
    assert ips("--host", "r1") == []  # another client's host: nothing, whatever the name
    collector.age("telemetry_alerts", 2 * 3600, "host = 'game1'")
    assert ips("--since", "1h") == [("game2", "198.51.100.2")]
    assert ips("--since", "3h") == [("game1", "198.51.100.1"), ("game2", "198.51.100.2")]
    assert [a["host"] for a in fleet(collector, "alerts", "--client", "rival")] == ["r1"]
