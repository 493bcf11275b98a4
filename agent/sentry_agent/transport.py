"""The one pinned HTTPS connection to Sentry's collector, shared by the shipper (``POST /v1/ingest``) and the
pack poller (``GET /v1/defence/...``); each owns its own instance (its own thread, its own connection).

- TLS with the collector's certificate pinned: after the handshake the peer certificate's SHA-256 (of its
  DER bytes) must equal ``collector_cert_sha256``, else nothing (not even the token) is sent. The collector's
  certificate is self-signed, so the pin replaces chain and name checks (and is stronger than them).
- Every network wait (connect, TLS handshake, each read and write) is bounded by the timeout given
  (``collector_timeout_seconds``); answers are read up to a size bound.
- One connection, reused while it lasts. A kept-alive connection the collector already ended is dialled again
  once (see :meth:`HttpsTransport.request`); both requests made here are idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
from collections.abc import Mapping
from typing import Protocol

__all__ = ["INGEST_PATH", "HttpsTransport", "Response", "Transport", "TransportError", "cert_sha256", "error_text"]

log = logging.getLogger(__name__)

INGEST_PATH = "/v1/ingest"
MAX_RESPONSE = 1024 * 1024

Response = tuple[int, dict[str, str], bytes]  # status, headers (names lowercased), body


class TransportError(Exception):
    """The collector could not be reached, or was not the pinned one (nothing was acknowledged)."""


class Transport(Protocol):
    def post(self, body: bytes) -> tuple[int, bytes]:
        """Send one gzip'ed batch; (HTTP status, response body). Raises TransportError."""
        ...

    def close(self) -> None: ...


def cert_sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


class _Stale(Exception):
    """The collector ended the connection before it answered (see HttpsTransport.request)."""


# What a request on a connection the peer already ended comes to: no answer (RemoteDisconnected, a
# ConnectionResetError), a reset or a broken pipe while writing, or TLS's end of stream. Never a timeout.
_STALE_ERRORS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class HttpsTransport:
    """HTTP/1.1 over TLS to the collector, the certificate pinned; one connection, reused while it lasts."""

    def __init__(self, host: str, port: int, pin: str, token: str, timeout: float) -> None:
        self.host, self.port, self.pin, self.timeout = host, port, pin, timeout
        self._token = token
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._context.check_hostname = False
        self._context.verify_mode = ssl.CERT_NONE
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._conn: http.client.HTTPSConnection | None = None

    def _connect(self) -> http.client.HTTPSConnection:
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self._context)
        try:
            conn.connect()  # TCP and the TLS handshake, each step bounded by the socket timeout
            sock = conn.sock
            der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        except (OSError, ssl.SSLError) as exc:
            conn.close()
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        if der is None or not hmac.compare_digest(cert_sha256(der), self.pin):
            conn.close()
            got = cert_sha256(der) if der else "no certificate"
            raise TransportError(f"collector certificate does not match the pin (got {got}); nothing sent")
        return conn

    def post(self, body: bytes) -> tuple[int, bytes]:
        """``POST /v1/ingest`` with one gzip'ed batch: (status, body)."""
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        status, _, data = self.request("POST", INGEST_PATH, body, headers)
        return status, data

    def get(self, path: str, *, max_bytes: int = MAX_RESPONSE) -> Response:
        """``GET path``: (status, headers, body); a body longer than ``max_bytes`` is an error."""
        status, headers, data = self.request("GET", path, None, {}, max_bytes=max_bytes + 1)
        if len(data) > max_bytes:
            self.close()  # the rest of the body is still on the connection
            raise TransportError(f"GET {path} from {self.host}:{self.port}: answer longer than {max_bytes} bytes")
        return status, headers, data

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        *,
        max_bytes: int = MAX_RESPONSE,
    ) -> Response:
        reused = self._conn is not None
        try:
            return self._request_once(method, path, body, headers, max_bytes)
        except _Stale:
            if not reused:
                raise TransportError(
                    f"{method} to {self.host}:{self.port} failed: the collector closed the connection unanswered"
                ) from None
        # The collector closes a kept-alive connection once it has been idle for its keep-alive timeout (10 s): a
        # request written as it closes is never handled and gets no answer. That is the normal end of an idle
        # connection, not a failure (it happened before each batch that followed a pause), so one fresh connection,
        # bounded like the first, carries the request (idempotent anyway: every record carries its key, and a GET
        # changes nothing).
        log.debug("the collector ended the kept-alive connection; reconnecting")
        try:
            return self._request_once(method, path, body, headers, max_bytes)
        except _Stale:
            raise TransportError(
                f"{method} to {self.host}:{self.port} failed: the collector closed the connection unanswered"
            ) from None

    def _request_once(
        self, method: str, path: str, body: bytes | None, extra: Mapping[str, str], max_bytes: int
    ) -> Response:
        if self._conn is None:
            self._conn = self._connect()
        headers = {"Authorization": f"Bearer {self._token}", **extra}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        try:
            self._conn.request(method, path, body=body, headers=headers)
            resp = self._conn.getresponse()
            data = resp.read(max_bytes)
            answer_headers = {k.lower(): v for k, v in resp.getheaders()}
            if resp.will_close or not resp.isclosed():
                self.close()  # closing, or a body left unread: this connection cannot carry another request
            return resp.status, answer_headers, data
        except _STALE_ERRORS:
            self.close()
            raise _Stale from None
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            self.close()
            reason = "timed out" if isinstance(exc, socket.timeout | TimeoutError) else f"{type(exc).__name__}: {exc}"
            raise TransportError(f"{method} to {self.host}:{self.port} failed: {reason}") from None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None


def error_text(body: bytes) -> str:
    """The collector's one-line reason from an error answer (its ``{"error": ...}``, else the body's start)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return " ".join(data["error"].split())[:200]
    return " ".join(body[:200].decode("utf-8", errors="replace").split()) or "no body"
