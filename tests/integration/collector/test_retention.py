"""``sentryctl collector prune --older-than``: records received (by the collector's clock) before the cut go, the
rest stay; a real collector stored them, the real CLI prunes them."""

from __future__ import annotations

import datetime as dt
import json

from .conftest import Collector, Counts, boot_id, record

DAY = 86_400


def test_prune_deletes_what_was_received_before_the_cut_and_keeps_the_rest(
    collector: Collector, counts: Counts
) -> None:
    old, new = boot_id(), boot_id()
    # Host times are irrelevant: the old batch claims to be new and the new one old; the receive time decides.
    old_batch = [record("alert", "game1", old, i, time_="2026-12-07T00:00:00Z") for i in range(3)] + [
        record("heartbeat", "game1", old, i, time_="2026-12-07T00:00:00Z") for i in range(3, 5)
    ]
    new_batch = [record("alert", "game2", new, i, time_="2020-01-01T00:00:00Z") for i in range(4)] + [
        record("heartbeat", "game2", new, 4, time_="2020-01-01T00:00:00Z")
    ]
    assert collector.ingest("game1", old_batch).body["stored"] == 5
    assert collector.ingest("game2", new_batch).body["stored"] == 5
    for table in ("telemetry_alerts", "telemetry_heartbeats"):
        collector.age(table, 31 * DAY, f"boot = '{old}'")
        collector.age(table, 29 * DAY, f"boot = '{new}'")
    assert counts() == (7, 3)

    started = dt.datetime.now(dt.UTC)
    shown = json.loads(collector.sentryctl("collector", "prune", "--older-than", "30d", "--json").stdout)
    assert shown["deleted"] == {"alert": 3, "heartbeat": 2}
    cut = dt.datetime.fromisoformat(shown["before"])
    assert abs((started - dt.timedelta(days=30) - cut).total_seconds()) < 60
    assert counts() == (4, 1)
    assert collector.sql("SELECT DISTINCT boot FROM telemetry_alerts") == [(new,)]
    assert collector.sql("SELECT DISTINCT boot FROM telemetry_heartbeats") == [(new,)]

    # Nothing left before the cut: a second prune deletes nothing; a shorter one takes the rest.
    again = collector.sentryctl("collector", "prune", "--older-than", "30d")
    assert "deleted 0 alert(s), 0 heartbeat(s) before" in again.stdout
    shown = json.loads(collector.sentryctl("collector", "prune", "--older-than", "28d", "--json").stdout)
    assert shown["deleted"] == {"alert": 4, "heartbeat": 1}
    assert counts() == (0, 0)


def test_a_bad_duration_is_a_usage_error_and_nothing_is_deleted(collector: Collector, counts: Counts) -> None:
    assert collector.ingest("game1", [record("alert", "game1", boot_id(), 0)]).status == 200
    collector.age("telemetry_alerts", 365 * DAY)
    for bad in ("30", "0d", "thirty days"):
        done = collector.sentryctl("collector", "prune", "--older-than", bad, expect=2)
        assert "write a number and a unit: 90s, 15m, 1h, 30d" in done.stderr
    assert counts() == (1, 0)
