"""Running the collector: uvicorn over TLS, with every wait on a peer bounded.

uvicorn bounds a kept-alive connection between requests (``timeout_keep_alive``), but arms that timer only after
a first response: a peer that connects and never sends a request line is kept for ever (uvicorn issue #160,
PR #1192). And asyncio closes a peer that never finishes the TLS handshake only after 60 s, a default uvicorn
does not expose. So:

* :class:`_BoundedLoop` gives the listening socket ``ssl_handshake_timeout``;
* :class:`BoundedH11Protocol` arms a timer when the connection is made and after each response, and closes the
  connection if, when it fires, no request is being handled (nothing sent, or headers still incomplete);
* the ingest route reads the body under its own timeout (408), so an incomplete body is bounded too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import Callable, Sequence
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..ledger import Ledger
from .app import create_app
from .config import CollectorSettings
from .worker import Worker

STOP_WORKERS_S = 15.0

log = logging.getLogger(__name__)


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for a request to arrive (see the module docstring)."""

    _request_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_request_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_request_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._request_deadline is not None:
            self._request_deadline.cancel()
            self._request_deadline = None
        super().connection_lost(exc)

    def _arm_request_deadline(self) -> None:
        if self._request_deadline is not None:
            self._request_deadline.cancel()
        self._request_deadline = self.loop.call_later(self.config.timeout_keep_alive, self._request_overdue)

    def _request_overdue(self) -> None:
        self._request_deadline = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return  # a request is being handled; the app bounds its body and its work
        if not self.transport.is_closing():
            log.info("closing a connection that sent no complete request in time")
            self.transport.close()


class _BoundedLoop(asyncio.SelectorEventLoop):
    handshake_timeout: float = 10.0

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_handshake_timeout", self.handshake_timeout)
        return await super().create_server(*args, **kwargs)


def uvicorn_config(settings: CollectorSettings, app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.listen_host,
        port=settings.listen_port,
        ssl_keyfile=str(settings.key_file),
        ssl_certfile=str(settings.cert_file),
        ssl_version=ssl.PROTOCOL_TLS_SERVER,
        http=BoundedH11Protocol,
        loop="none",
        lifespan="off",
        timeout_keep_alive=max(1, math.ceil(settings.request_timeout_seconds)),
        limit_concurrency=settings.limit_concurrency,
        timeout_graceful_shutdown=5,
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_config=None,
    )


def serve(settings: CollectorSettings, workers: Callable[[Ledger], Sequence[Worker]] | None = None) -> None:
    """Run until SIGINT/SIGTERM. Refuses to start without TLS (the settings always carry key and certificate).
    ``workers`` (given the collector's ledger) run beside the server: started before it, stopped after it, each
    stop bounded (a worker stuck in a pass is a daemon thread and ends with the process)."""
    if not (settings.key_file.is_file() and settings.cert_file.is_file()):
        raise RuntimeError("the collector serves TLS only")
    ledger = Ledger.open(settings.db_url, settings.home, actor="collector")
    started: list[Worker] = []
    try:
        server = uvicorn.Server(uvicorn_config(settings, create_app(settings, ledger)))

        def loop_factory() -> asyncio.AbstractEventLoop:
            loop = _BoundedLoop()
            loop.handshake_timeout = settings.handshake_timeout_seconds
            return loop

        for worker in workers(ledger) if workers else ():
            worker.start()
            started.append(worker)
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(server.serve())
    finally:
        for worker in started:
            if not worker.stop(STOP_WORKERS_S):
                log.warning("%s did not stop within %.0f s", worker.name, STOP_WORKERS_S)
        ledger.close()
