"""Ingest through a real collector over real TLS: stored once, client from the token, bad input refused."""

from __future__ import annotations

import datetime as dt
import gzip
import json

from .conftest import Collector, Counts, boot_id, record


def test_a_batch_is_stored_and_a_replay_is_acknowledged_and_stored_once(collector: Collector, counts: Counts) -> None:
    boot = boot_id()
    batch = [record("alert", "game1", boot, 0), record("heartbeat", "game1", boot, 1)]
    first = collector.ingest("game1", batch)
    assert (first.status, first.body) == (200, {"stored": 2, "duplicates": 0, "rejected": []})
    again = collector.ingest("game1", batch)
    assert (again.status, again.body) == (200, {"stored": 0, "duplicates": 2, "rejected": []})
    assert counts() == (1, 1)
    # Half old, half new, in both tables: exactly the new ones are counted as stored.
    mixed = [*batch, record("alert", "game1", boot, 2), record("heartbeat", "game1", boot, 3)]
    assert collector.ingest("game1", mixed).body == {"stored": 2, "duplicates": 2, "rejected": []}
    # The same keys from another host of the client are other records (the key includes the host).
    other = [record("alert", "game2", boot, 0), record("heartbeat", "game2", boot, 1)]
    assert collector.ingest("game2", other).body == {"stored": 2, "duplicates": 0, "rejected": []}
    assert counts() == (3, 3)
    collector.sql("DELETE FROM telemetry_alerts WHERE host = 'game2'")
    collector.sql("DELETE FROM telemetry_heartbeats WHERE host = 'game2' OR seq = 3")
    collector.sql("DELETE FROM telemetry_alerts WHERE seq = 2")
    assert counts() == (1, 1)
    # The client comes from the token, never from the payload's "client".
    assert collector.sql("SELECT client, host, rule, ip, severity FROM telemetry_alerts") == [
        ("acme", "game1", "ssh-bruteforce", "198.51.100.7", "medium")
    ]


def test_a_host_clock_hours_off_is_kept_beside_the_receive_time(collector: Collector) -> None:
    boot = boot_id()
    off = "2026-01-01T00:00:00.000Z"
    assert collector.ingest("game2", [record("heartbeat", "game2", boot, 0, time_=off)]).status == 200
    [(host_time, received_at)] = collector.sql("SELECT host_time, received_at FROM telemetry_heartbeats")
    as_dt = [v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(str(v)) for v in (host_time, received_at)]
    host_dt, recv_dt = (v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v for v in as_dt)
    assert host_dt == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - recv_dt).total_seconds()) < 60


def test_wrong_or_revoked_token_is_401_and_nothing_is_stored(collector: Collector, counts: Counts) -> None:
    batch = [record("alert", "game1", boot_id(), 0)]
    assert collector.ingest("game1", batch, token="not-a-token-at-all").status == 401
    assert collector.ingest("game1", batch, token="").status == 401
    collector.sql("UPDATE collector_tokens SET revoked_at = created_at WHERE client = 'acme'")
    refused = collector.ingest("game1", batch)
    assert refused.status == 401 and "error" in refused.body
    assert counts() == (0, 0)


def test_a_token_naming_another_clients_host_is_403_and_nothing_is_stored(collector: Collector, counts: Counts) -> None:
    refused = collector.ingest("r1", [record("alert", "r1", boot_id(), 0)], client="acme")
    assert refused.status == 403 and "error" in refused.body
    assert counts() == (0, 0)
    assert collector.ingest("r1", [record("alert", "r1", boot_id(), 0)], client="rival").status == 200


def test_malformed_json_and_a_bad_envelope_are_400(collector: Collector, counts: Counts) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {collector.tokens['acme']}"}
    assert collector.request("POST", "/v1/ingest", b"{not json", headers).status == 400
    assert collector.request("POST", "/v1/ingest", b'{"records": []}', headers).status == 400
    assert collector.request("POST", "/v1/ingest", b'{"host": "game1", "records": {}}', headers).status == 400
    bad_ct = {**headers, "Content-Type": "text/plain"}
    assert collector.request("POST", "/v1/ingest", b'{"host": "game1", "records": []}', bad_ct).status == 415
    assert counts() == (0, 0)


def test_records_of_a_wrong_schema_are_rejected_inside_a_200_and_the_rest_stored(
    collector: Collector, counts: Counts
) -> None:
    boot = boot_id()
    batch = [
        record("alert", "game1", boot, 0),
        record("alert", "game1", "XYZ", 1),
        record("alert", "game1", boot, -1),
        record("alert", "game2", boot, 3),
        record("alert", "game1", boot, 4, time_="yesterday"),
        {"type": "gossip"},
        record("heartbeat", "game1", boot, 6),
    ]
    answer = collector.ingest("game1", batch)
    assert answer.status == 200
    assert answer.body["stored"] == 2
    assert [r["index"] for r in answer.body["rejected"]] == [1, 2, 3, 4, 5]
    assert counts() == (1, 1)


def test_oversized_bodies_are_413_and_nothing_is_stored(collector: Collector, counts: Counts) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {collector.tokens['acme']}"}
    boot = boot_id()
    # Too many records.
    many = [record("alert", "game1", boot, i) for i in range(1001)]
    assert collector.ingest("game1", many).status == 413
    # Over 1 MiB on the wire (incompressible padding, sent as identity).
    big = json.dumps({"host": "game1", "records": [record("alert", "game1", boot, 0, pad="x" * (1 << 20))]})
    assert collector.request("POST", "/v1/ingest", big.encode(), headers).status == 413
    # A small gzip that inflates past 8 MiB.
    bomb = gzip.compress(json.dumps({"host": "game1", "records": [], "pad": " " * (9 << 20)}).encode())
    assert len(bomb) < (1 << 20)
    assert collector.request("POST", "/v1/ingest", bomb, {**headers, "Content-Encoding": "gzip"}).status == 413
    assert counts() == (0, 0)


def test_metrics_need_the_operator_token_and_count_by_type(collector: Collector) -> None:
    assert collector.request("GET", "/metrics/").status == 401
    boot = boot_id()
    collector.ingest("game1", [record("alert", "game1", boot, 0), record("heartbeat", "game1", boot, 1)])
    collector.ingest("game1", [record("alert", "game1", boot, 2)], token="wrong-token-x")
    operator = (collector.home / "collector" / "operator.token").read_text().strip()
    text = collector.request("GET", "/metrics/", headers={"Authorization": f"Bearer {operator}"}).body["text"]
    assert 'sentry_collector_ingest_records_total{type="alert"} 1.0' in text
    assert 'sentry_collector_ingest_rejects_total{reason="unauthorized"} 1.0' in text
    assert "sentry_collector_batch_latency_seconds_count 1.0" in text
    assert 'sentry_collector_client_last_seen_timestamp_seconds{client="acme"}' in text
