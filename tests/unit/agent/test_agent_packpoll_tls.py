"""The pack poller's client against a real TLS server on loopback serving the collector's two defence routes:
the pinned connection, the token, the signature header, and the bound on a collector that never answers."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sentry_agent.config import AgentConfig, parse_config
from sentry_agent.packpoll import PackClient, PackPoller, PollError
from sentry_agent.packstate import PackInbox

from .pack_helpers import Signed, Signer
from .test_agent_shipper_tls import make_cert


class Collector:
    """``GET /v1/defence/assignment`` and ``GET /v1/defence/packs/<version>``; ``hang``: accept the request, never
    answer (until closed)."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.pack: Signed | None = None
        self.signature_header: str | None = None
        self.hang = False
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.requests.append((self.path, self.headers.get("Authorization", "")))
                if outer.hang:
                    outer.release.wait(30)
                    self.close_connection = True
                    return
                pack = outer.pack
                headers: dict[str, str] = {}
                if self.path.startswith("/v1/defence/assignment?host=game-01"):
                    body = json.dumps(
                        {
                            "host": "game-01",
                            "version": pack.version if pack else None,
                            "digest": pack.digest if pack else None,
                        }
                    ).encode()
                elif pack is not None and self.path == f"/v1/defence/packs/{pack.version}":
                    body = pack.content
                    headers["X-Sentry-Pack-Digest"] = pack.digest
                    headers["X-Sentry-Pack-Signature"] = (
                        outer.signature_header
                        if outer.signature_header is not None
                        else base64.b64encode(pack.signature).decode()
                    )
                else:
                    missing = b'{"error": "no such pack"}'
                    self.send_response(404)
                    self.send_header("Content-Length", str(len(missing)))
                    self.end_headers()
                    self.wfile.write(missing)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture
def pin_and_server(tmp_path: Path) -> Iterator[tuple[str, Collector]]:
    cert, key, pin = make_cert(tmp_path, "collector")
    server = Collector(cert, key)
    yield pin, server
    server.close()


def config(config_dict: dict[str, Any], port: int, pin: str, key: str, timeout: float = 5) -> AgentConfig:
    return parse_config(
        {
            **config_dict,
            "collector_url": f"https://127.0.0.1:{port}",
            "collector_cert_sha256": pin,
            "collector_token": "TOKEN-0123456789",
            "collector_timeout_seconds": timeout,
            "pack_public_key": key,
        }
    )


def test_the_poller_fetches_and_verifies_a_pack_over_the_pinned_connection(
    config_dict: dict[str, Any], pin_and_server: tuple[str, Collector], signer: Signer
) -> None:
    pin, server = pin_and_server
    conf = config(config_dict, server.port, pin, signer.public_hex)
    inbox = PackInbox()
    known: list[tuple[str | None, str | None]] = [(None, None)]
    poller = PackPoller(conf, inbox, lambda: known[0])
    try:
        assert poller.poll_once() == "drop"  # nothing assigned
        assert inbox.take() == ("drop", None)
        server.pack = signer.pack(blocklist=[{"net": "203.0.113.0/24", "expires_at": "2030-01-01T00:00:00Z"}])
        assert poller.poll_once() == "activate"
        kind, pack = inbox.take()  # type: ignore[misc]
        assert kind == "activate" and pack.digest == server.pack.digest and pack.version == "2026.12.7"
        assert [p for p, _ in server.requests] == [
            "/v1/defence/assignment?host=game-01",
            "/v1/defence/assignment?host=game-01",
            "/v1/defence/packs/2026.12.7",
        ]
        assert {auth for _, auth in server.requests} == {"Bearer TOKEN-0123456789"}
    finally:
        poller.stop()


def test_a_missing_or_wrong_signature_header_is_a_refusal(
    config_dict: dict[str, Any], pin_and_server: tuple[str, Collector], signer: Signer
) -> None:
    pin, server = pin_and_server
    server.pack = signer.pack()
    inbox = PackInbox()
    for header, reason in (("not base64!", "X-Sentry-Pack-Signature"), (base64.b64encode(b"x" * 64).decode(),
                                                                         "signature does not verify")):  # fmt: skip
        server.signature_header = header
        poller = PackPoller(config(config_dict, server.port, pin, signer.public_hex), inbox, lambda: (None, None))
        try:
            assert poller.poll_once() == "refuse"
        finally:
            poller.stop()
        kind, (version, digest, error) = inbox.take()  # type: ignore[misc]
        assert (kind, version, digest) == ("refuse", "2026.12.7", server.pack.digest) and reason in error


def test_a_collector_that_never_answers_is_bounded_by_the_timeout(
    config_dict: dict[str, Any], pin_and_server: tuple[str, Collector], signer: Signer
) -> None:
    pin, server = pin_and_server
    server.hang = True
    client = PackClient(config(config_dict, server.port, pin, signer.public_hex, timeout=0.5))
    started = time.monotonic()
    with pytest.raises(PollError, match="timed out"):
        client.assignment()
    elapsed = time.monotonic() - started
    client.close()
    assert len(server.requests) == 1  # the request arrived: the wait was for the answer
    assert elapsed < 3, elapsed


def test_an_impostor_certificate_gets_no_request(
    config_dict: dict[str, Any], pin_and_server: tuple[str, Collector], signer: Signer
) -> None:
    _, server = pin_and_server
    client = PackClient(config(config_dict, server.port, "0" * 64, signer.public_hex))
    with pytest.raises(PollError, match="does not match the pin"):
        client.assignment()
    client.close()
    assert server.requests == []
