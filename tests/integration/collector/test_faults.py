"""Faults against a real collector over real TLS: silent peers are disconnected within the bound, a kill in the
middle of a batch stores all of it or none of it, and two collectors on one PostgreSQL store every record once."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from .conftest import TIMEOUTS, Collector, Counts, boot_id, free_port, prepare, record

BOUND_S = max(TIMEOUTS.values()) + 3  # the configured timeout plus scheduling slack


def closed_within(sock: socket.socket, bound: float) -> float:
    """Seconds until the peer closes ``sock`` (recv returns b'' or the connection resets); fails past ``bound``."""
    started = time.monotonic()
    sock.settimeout(bound)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the collector kept a silent connection open for more than {bound} s")
    return time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed_within_the_bound(collector: Collector) -> None:
    # Not even a TLS ClientHello: asyncio's handshake timeout, which the collector sets.
    with socket.create_connection(("127.0.0.1", collector.port), timeout=5) as raw:
        assert closed_within(raw, BOUND_S) >= 1
    # TLS done, then no request line: uvicorn alone would keep this one for ever (its keep-alive timer starts
    # only after a first response).
    with collector.connect() as tls:
        assert closed_within(tls, BOUND_S) >= 1
    # Half a request line.
    with collector.connect() as tls:
        tls.sendall(b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\n")
        closed_within(tls, BOUND_S)
    # Still serving afterwards.
    assert collector.request("GET", "/healthz").status == 200


def test_an_incomplete_body_is_answered_and_closed_within_the_bound(collector: Collector, counts: Counts) -> None:
    with collector.connect() as tls:
        tls.sendall(
            b"POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {collector.tokens['acme']}\r\nContent-Length: 5000\r\n\r\n".encode()
            + b'{"host": "game1", "records": ['
        )
        tls.settimeout(BOUND_S)
        answer = tls.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        closed_within(tls, BOUND_S)
    assert counts() == (0, 0)


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.15])
def test_a_collector_killed_mid_batch_stores_all_or_nothing_and_the_retry_once(
    collector: Collector, counts: Counts, delay: float
) -> None:
    boot = boot_id()
    batch = [record("heartbeat" if i % 2 else "alert", "game1", boot, i) for i in range(1000)]
    body = gzip.compress(json.dumps({"host": "game1", "records": batch}).encode())
    head = (
        "POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        f"Authorization: Bearer {collector.tokens['acme']}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with collector.connect() as tls:
        tls.sendall(head + body)
        time.sleep(delay)
        assert collector.proc is not None
        collector.stop(signal.SIGKILL)
    # One transaction: either the whole batch is there or none of it.
    assert sum(counts()) in (0, 1000)
    collector.start()
    retry = collector.ingest("game1", batch)
    assert retry.status == 200 and retry.body["stored"] + retry.body["duplicates"] == 1000
    assert counts() == (500, 500)


def test_two_collectors_on_one_postgresql_store_every_record_once(pg_db_url: str, tmp_path: Path) -> None:
    # Several collector processes share a PostgreSQL, never a SQLite file: PostgreSQL only (fails, not skips,
    # under SENTRY_REQUIRE_PG=1 without a server).
    first = prepare(tmp_path / "home", pg_db_url, free_port())
    second = Collector(first.home, pg_db_url, free_port(), first.cert, first.tokens)
    first.start()
    second.start()
    try:
        boots = [boot_id() for _ in range(4)]
        batches = [[record("alert", "game1", b, i) for i in range(200)] for b in boots]
        stored: list[int] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def ship(target: Collector, batch: list[dict[str, object]]) -> None:
            try:
                answer = target.ingest("game1", batch)
                assert answer.status == 200, answer
                with lock:
                    stored.append(answer.body["stored"])
            except BaseException as exc:
                errors.append(exc)

        # Every batch is replayed three times to each collector, all at once.
        threads = [
            threading.Thread(target=ship, args=(target, batch))
            for batch in batches
            for target in (first, second)
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        assert len(stored) == len(threads)
        assert sum(stored) == 800
        assert first.sql("SELECT count(*), count(DISTINCT (boot, seq)) FROM telemetry_alerts") == [(800, 800)]
    finally:
        first.stop()
        second.stop()
    assert os.path.exists(first.cert)
