"""Figures over real rows stored through Ledger.store_batch, on SQLite and PostgreSQL: every figure checked
against numbers worked out by hand, one client's rows never in another's figures, the empty state, bad input."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from orchestrator.analytics import AnalyticsError, figures, parse_period
from orchestrator.ledger import Ledger

from .conftest import ATTACKER, OTHER, Feed, at

RIVAL_IP = "192.0.2.99"
NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def seed(ledger: Ledger) -> None:
    game1, game2, r1 = Feed(ledger, "acme", "game1"), Feed(ledger, "acme", "game2"), Feed(ledger, "rival", "r1")
    for minute in range(3):
        game1.alert(at(3, 10, minute), ATTACKER)
    game1.alert(at(5), OTHER, rule="web-scan", severity="medium", action="recorded", ban_seconds=600)
    # Banned for 40 days on the 29th: still active when November ends.
    game2.alert(at(29), ATTACKER, ban_seconds=40 * 86400)
    # Outside the month: not counted.
    game1.alert(at(31, month=10), ATTACKER)
    # Counters: 10 (no earlier baseline: counted whole), +20, reset to 5 (counted 5), +10, +0, +5 = 50 packets.
    game1.heartbeats(at(10, 0), 6, 60, [(10, 1000), (30, 3000), (5, 500), (15, 1500), (15, 1500), (20, 2000)], 2)
    # game2's last October heartbeat is the baseline of its first November one: 150 - 100 = 50 packets.
    game2.heartbeats(at(31, 23, 59, month=10), 2, 60, [(100, 10000), (150, 15000)], 1)
    game2.restart()  # an agent restart does not reset nft counters: 150 -> 170 is 20 more
    game2.heartbeats(at(2, 0), 1, 60, [(170, 17000)], 1)
    r1.alert(at(4), RIVAL_IP, severity="critical")
    r1.heartbeats(at(4), 3, 60, [(1000, 99000), (2000, 199000), (3000, 299000)])


def test_month_figures_match_the_rows(analytics_ledger: Ledger) -> None:
    seed(analytics_ledger)
    f = figures(analytics_ledger, "acme", parse_period("2026-11", NOW), now=NOW)
    assert not f.empty
    assert f.alert_total() == 5
    assert dict(f.alerts_by_rule()) == {"ssh-bruteforce": 4, "web-scan": 1}
    per_day = dict(f.alerts_per_day())
    assert len(per_day) == 30 and per_day["2026-11-03"] == {"high": 3} and per_day["2026-11-05"] == {"medium": 1}
    top = f.sources[0]
    assert (top.ip, top.alerts, top.hosts) == (ATTACKER, 4, 2)
    assert top.first_seen == at(3, 10, 0) and top.last_seen == at(29)
    assert [s.ip for s in f.sources] == [ATTACKER, OTHER]
    assert f.bans_issued() == 5 and f.bans_active_at_end() == 1
    assert f.drops_per_host() == [("game1", 50, 5000), ("game2", 70, 7000)]
    uptime = {u.host: u for u in f.uptime}
    assert uptime["game1"].heartbeats == 6 and uptime["game1"].expected == 30 * 1440  # essentials: every 60 s
    assert uptime["game2"].heartbeats == 2
    assert f.bans_active_now == 2 + 1
    assert "not available" in f.time_to_ban
    doc = json.loads(json.dumps(f.to_json()))
    assert doc["inputs"]["telemetry_alerts"] == 5 and doc["inputs"]["telemetry_heartbeats"] == 8
    assert doc["inputs"]["chain_head"]["seq"] == analytics_ledger.events(limit=1)[0].seq
    assert doc["summary"]["packets_dropped"] == 120 and doc["time_to_ban"]["available"] is False


def test_one_client_never_sees_another(analytics_ledger: Ledger) -> None:
    seed(analytics_ledger)
    period = parse_period("2026-11", NOW)
    acme = json.dumps(figures(analytics_ledger, "acme", period, now=NOW).to_json())
    rival = figures(analytics_ledger, "rival", period, now=NOW)
    assert RIVAL_IP not in acme and "r1" not in acme and "99000" not in acme
    assert ATTACKER not in json.dumps(rival.to_json())
    assert rival.drops_per_host() == [("r1", 3000, 299000)]
    with pytest.raises(AnalyticsError, match="not a host of client 'acme'"):
        figures(analytics_ledger, "acme", period, host="r1")


def test_host_filter(analytics_ledger: Ledger) -> None:
    seed(analytics_ledger)
    f = figures(analytics_ledger, "acme", parse_period("2026-11", NOW), host="game2", now=NOW)
    assert f.alert_total() == 1 and [u.host for u in f.uptime] == ["game2"]
    assert f.drops_per_host() == [("game2", 70, 7000)]


def test_day_range(analytics_ledger: Ledger) -> None:
    seed(analytics_ledger)
    f = figures(analytics_ledger, "acme", parse_period("2026-11-03..2026-11-04", NOW), now=NOW)
    assert f.alert_total() == 3 and len(f.alerts_per_day()) == 2


def test_client_without_data_is_an_empty_state(analytics_ledger: Ledger) -> None:
    analytics_ledger.add_client("quiet", "essentials", {})
    f = figures(analytics_ledger, "quiet", parse_period("2026-11", NOW), now=NOW)
    assert f.empty and f.alert_total() == 0 and f.sources == [] and f.drops == [] and f.uptime == []
    assert f.to_json()["empty"] is True


def test_unknown_client(analytics_ledger: Ledger) -> None:
    with pytest.raises(AnalyticsError, match="no client 'nobody'"):
        figures(analytics_ledger, "nobody", parse_period("2026-11", NOW))


def test_incidents_and_response_times_of_the_period_are_figures_of_their_client_only(
    analytics_ledger: Ledger,
) -> None:
    from orchestrator.ledger.incidents import IncidentSpec

    opened = at(3, 10)

    def spec(client: str, key: str, host: str, when: dt.datetime = opened) -> IncidentSpec:
        return IncidentSpec(
            client=client, tier="essentials", kind="attack", severity="critical", dedup_key=key,
            title=f"{key} attack", hosts=(host,), due_at=when + dt.timedelta(minutes=240), occurrences=1,
        )  # fmt: skip

    ledger = analytics_ledger
    answered = ledger.apply_detection([spec("acme", "attack:a", "game1")], {}, at=opened).opened[0].id
    ledger.ack_incident(answered, by="oncall", at=opened + dt.timedelta(minutes=12))
    late = ledger.apply_detection([spec("acme", "attack:b", "game2")], {}, at=opened).opened[0].id
    ledger.resolve_incident(late, by="oncall", at=opened + dt.timedelta(hours=5))
    ledger.apply_detection([spec("acme", "attack:c", "game1", at(2, month=12))], {}, at=at(2, month=12))  # December
    ledger.apply_detection([spec("rival", "attack:r", "r1")], {}, at=opened)

    month = figures(ledger, "acme", parse_period("2026-11", NOW), now=NOW)
    assert [(i.id, i.hosts) for i in month.incidents] == [(answered, ("game1",)), (late, ("game2",))]
    assert month.response is not None
    assert (month.response.total, month.response.within, month.response.missed) == (2, 1, 1)
    doc = json.loads(json.dumps(month.to_json()))
    assert [i["response"] for i in doc["incidents"]] == ["within", "missed"]
    assert doc["response"]["ratio"] == 0.5 and doc["response"]["mean_seconds_to_ack"] == 720.0
    header, rows = month.tables()["incidents"]
    assert header[0] == "id" and [r[-1] for r in rows] == ["within", "missed"]
    # One host's figures keep the incidents naming it; the rival's incident is never in acme's figures.
    one = figures(ledger, "acme", parse_period("2026-11", NOW), host="game2", now=NOW)
    assert [i.id for i in one.incidents] == [late]
    rival = figures(ledger, "rival", parse_period("2026-11", NOW), now=NOW)
    assert [i.client for i in rival.incidents] == ["rival"]
    # The report and the portal show them.
    from orchestrator.analytics.render import figures_html

    html = figures_html(month)
    assert "2 incident(s) opened in the period: 1 answered within" in html and "(compliance 50%)" in html
    assert "No incident was opened in this period." in figures_html(
        figures(ledger, "acme", parse_period("2026-10", NOW), now=NOW)
    )
