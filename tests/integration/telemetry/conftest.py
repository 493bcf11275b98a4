"""Telemetry on the session's lab: the provisioned client's agents wired to a real collector by provisioning
itself (``collector init`` on the lab bridge address, then the agent part of the site playbook), and that
collector run as its own process (``sentryctl collector serve``) over TLS, storing into the session's ledger.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from orchestrator import provision
from orchestrator.collector import config, process
from orchestrator.lab import net
from orchestrator.ledger import Ledger

from ..conftest import Provisioned, _run_tail

SENTRYCTL = str(Path(sys.executable).parent / "sentryctl")
PORT = 8443  # on the lab's own bridge address: a lab per /24, so parallel sessions never meet
GAME_LOG = "/var/log/sentry-game/login.log"


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll until the predicate is truthy (bounded); never a fixed sleep around a race."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Telemetry:
    provisioned: Provisioned
    address: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def settings(self) -> Any:
        return self.provisioned.env.settings

    def start(self) -> None:
        env = {
            **os.environ,
            "SENTRY_HOME": str(self.settings.home),
            "SENTRY_INVENTORIES": str(self.settings.inventories),
        }
        # Another collector still on this address (a fixture that leaked one) would answer in our place while ours
        # fails to bind, and every test would talk to the wrong process: refuse that loudly.
        with contextlib.suppress(OSError):
            socket.create_connection((self.address, PORT), timeout=1).close()
            raise AssertionError(f"a collector already listens on {self.address}:{PORT}: {self.log_tail()}")
        # A file, not a pipe nobody reads while it runs: a full pipe would block the collector's event loop.
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [SENTRYCTL, "-v", "collector", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=log
            )

        def listening() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"collector exited: {self.log_tail()}")
            try:
                socket.create_connection((self.address, PORT), timeout=1).close()
            except OSError:
                return False
            return True

        wait_for("the collector to listen", listening, 30, 0.1)

    @property
    def log(self) -> Path:
        return Path(self.settings.home) / "collector-serve.log"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        process.stop(self.proc, sig)
        self.proc = None

    def rows(self, table: str, host: str, columns: str = "boot, seq") -> list[Any]:
        with Ledger.open(self.settings.db_url, self.settings.home) as ledger:
            engine = ledger._engine
            with engine.connect() as conn:
                query = sa.text(f"SELECT {columns} FROM {table} WHERE client = :c AND host = :h")
                return list(conn.execute(query, {"c": self.provisioned.client, "h": host}))

    def fleet(self, *args: str) -> str:
        env = {
            **os.environ,
            "SENTRY_HOME": str(self.settings.home),
            "SENTRY_INVENTORIES": str(self.settings.inventories),
        }
        proc = subprocess.run(
            [SENTRYCTL, "fleet", *args], check=False, env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout


@pytest.fixture(scope="package")
def telemetry(provisioned: Provisioned) -> Iterator[Telemetry]:
    with running_telemetry(provisioned) as tel:
        yield tel


@contextmanager
def running_telemetry(provisioned: Provisioned) -> Iterator[Telemetry]:
    """The provisioned client's agents wired to a collector on its lab's bridge address, the collector running."""
    env = provisioned.env
    state = env.lab.state()
    assert state is not None
    address = str(net.gateway(net.parse_subnet(state.subnet)))
    config.init(env.settings, listen=f"{address}:{PORT}", url=None, sans=[], force=True)
    started = time.monotonic()
    with Ledger.open(env.settings.db_url, env.settings.home) as ledger:
        result = provision.provision(env.settings, provisioned.client, ledger, tags=("agent",))
    assert result.ok, _run_tail(result)
    print(f"agents wired to https://{address}:{PORT} by provisioning in {time.monotonic() - started:.1f}s")
    tel = Telemetry(provisioned, address)
    tel.start()
    try:
        yield tel
    finally:
        tel.stop()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
