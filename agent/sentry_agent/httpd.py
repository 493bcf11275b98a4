"""Loopback HTTP server: ``GET /healthz`` (JSON, see :mod:`sentry_agent.health`) and ``GET /metrics``
(Prometheus text). Any other path or method gets 404.

Named ``httpd`` rather than ``http`` so the module can never shadow the standard library's ``http`` package.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

from .health import HealthState
from .metrics import CONTENT_TYPE, Registry

__all__ = ["HealthServer"]

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], health: HealthState, registry: Registry) -> None:
        if ipaddress.ip_address(address[0]).version == 6:
            self.address_family = socket.AF_INET6
        self.health = health
        self.registry = registry
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the address with getfqdn(), a reverse-DNS query that can stall
        # startup (or leave the host) when the resolver is slow; the name is only cosmetic.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    server_version = "sentry-agent"
    sys_version = ""
    # A stalled client must not pin a handler thread forever.
    timeout = 10

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _not_found(self) -> None:
        self._send(404, "application/json", b'{"error": "not found"}\n')

    def do_GET(self) -> None:
        server = cast(_Server, self.server)
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            code, doc = server.health.snapshot()
            self._send(code, "application/json", (json.dumps(doc, sort_keys=True) + "\n").encode())
        elif path == "/metrics":
            self._send(200, CONTENT_TYPE, server.registry.render().encode())
        else:
            self._not_found()

    # The contract is "anything else is 404", whatever the method.
    def do_HEAD(self) -> None:
        self._not_found()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http %s: " + format, self.address_string(), *args)


class HealthServer:
    """The HTTP server running in a background thread."""

    def __init__(
        self,
        host: str,
        port: int,
        health: HealthState,
        registry: Registry,
        *,
        poll_interval: float = 0.25,
    ) -> None:
        self._server = _Server((host, port), health, registry)
        # serve_forever only notices shutdown() between polls, so this bounds how long stopping takes.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": poll_interval},
            name="sentry-http",
            daemon=True,
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, so it would hang if never started
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
