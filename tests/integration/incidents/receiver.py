"""A tiny real webhook receiver on 127.0.0.1 for Apprise's ``json://`` target: records every page it takes, and
can be switched down (answers 503, as a paging service in trouble does)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    port: int = 0
    down: bool = False
    pages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: int = 0
    pings: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def paths(self) -> list[str]:
        with self.lock:
            return [p for p, _ in self.pages]

    def wait_for(self, count: int, timeout: float = 60.0) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.pages) >= count:
                    return list(self.pages)
            time.sleep(0.1)
        raise AssertionError(f"{count} page(s) expected within {timeout} s, got {self.paths()}")


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                if state.down:
                    state.refused += 1
                else:
                    state.pages.append((self.path, json.loads(body)))
            self.send_response(503 if state.down else 200)
            self.end_headers()

        def do_GET(self) -> None:
            with state.lock:
                state.pings += 1
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
