"""The shipper's transport against a real TLS server on loopback: the pin is checked before anything is sent,
and every wait is bounded."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sentry_agent.shipper import HttpsTransport, TransportError, encode_batch


def make_cert(tmp: Path, name: str) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class Server:
    """A TLS HTTP/1.1 server on loopback. ``close_after``: "answer" ends every connection after its answer without
    saying so (what a collector's keep-alive timeout looks like to the client), "request" ends it unanswered."""

    def __init__(self, cert: Path, key: Path, close_after: str | None = None) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.closed = threading.Event()  # set each time the server ended a connection
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                if close_after == "request":
                    self.close_connection = True
                    return
                reply = json.dumps({"stored": 1, "duplicates": 0, "rejected": []}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                self.close_connection = close_after == "answer"

            def log_message(self, *args: object) -> None:
                pass

        class Httpd(http.server.ThreadingHTTPServer):
            def shutdown_request(self, request: object) -> None:
                super().shutdown_request(request)  # type: ignore[arg-type]
                outer.closed.set()

        self.httpd = Httpd(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, tuple[Path, Path, str]]:
    return {"collector": make_cert(tmp_path, "collector"), "impostor": make_cert(tmp_path, "impostor")}


@pytest.fixture
def server(certs: dict[str, tuple[Path, Path, str]]) -> Iterator[Server]:
    cert, key, _ = certs["collector"]
    srv = Server(cert, key)
    yield srv
    srv.close()


def test_pinned_collector_gets_the_batch_with_the_token(
    server: Server, certs: dict[str, tuple[Path, Path, str]]
) -> None:
    pin = certs["collector"][2]
    transport = HttpsTransport("127.0.0.1", server.port, pin, "TOKEN-0123456789", timeout=5)
    body = encode_batch("game-01", [])
    status, reply = transport.post(body)
    status2, _ = transport.post(body)  # the connection is reused
    transport.close()
    assert (status, status2) == (200, 200) and json.loads(reply)["stored"] == 1
    headers, sent = server.requests[0]
    assert headers["Authorization"] == "Bearer TOKEN-0123456789"
    assert headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(sent)) == {"host": "game-01", "records": []}


def test_a_kept_alive_connection_the_collector_ended_is_replaced_without_an_error(
    certs: dict[str, tuple[Path, Path, str]],
) -> None:
    cert, key, pin = certs["collector"]
    server = Server(cert, key, close_after="answer")
    try:
        transport = HttpsTransport("127.0.0.1", server.port, pin, "TOKEN-0123456789", timeout=5)
        for _ in range(3):
            status, _reply = transport.post(encode_batch("game-01", []))
            assert status == 200
            assert server.closed.wait(5)  # the server ended the connection the transport still holds
            server.closed.clear()
        transport.close()
        assert len(server.requests) == 3  # each batch handled once: the stale attempt never reached a handler
    finally:
        server.close()


def test_a_fresh_connection_ended_unanswered_is_one_transport_error(certs: dict[str, tuple[Path, Path, str]]) -> None:
    cert, key, pin = certs["collector"]
    server = Server(cert, key, close_after="request")
    try:
        transport = HttpsTransport("127.0.0.1", server.port, pin, "TOKEN-0123456789", timeout=5)
        with pytest.raises(TransportError, match="closed the connection"):
            transport.post(encode_batch("game-01", []))
        assert len(server.requests) == 1  # no retry loop: only a reused connection is retried, once
    finally:
        server.close()


def test_a_certificate_that_is_not_the_pin_gets_nothing(
    server: Server, certs: dict[str, tuple[Path, Path, str]]
) -> None:
    wrong_pin = certs["impostor"][2]
    transport = HttpsTransport("127.0.0.1", server.port, wrong_pin, "TOKEN-0123456789", timeout=5)
    with pytest.raises(TransportError, match="does not match the pin"):
        transport.post(encode_batch("game-01", []))
    # A request, had one been sent, would be recorded before its answer: nothing to wait for.
    assert server.requests == []


def test_a_peer_that_never_answers_times_out_in_bounded_time() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts TCP, never speaks TLS
    try:
        transport = HttpsTransport("127.0.0.1", silent.getsockname()[1], "0" * 64, "TOKEN-0123456789", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(TransportError):
            transport.post(b"")
        assert time.monotonic() - started < 3
    finally:
        silent.close()


def test_nothing_listening_is_a_transport_error() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(TransportError, match="cannot connect"):
        HttpsTransport("127.0.0.1", port, "0" * 64, "TOKEN-0123456789", timeout=1).post(b"")
