"""The demo's collector: Sentry's collector run as its own process on the lab bridge address (where the lab's
hosts reach the controller), so provisioning wires every demo agent to it; and the bounded waits the demo
uses to show what arrived (an alert in ``fleet alerts``, a host's state in ``fleet status``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from .. import fleet
from ..collector import config, process
from ..errors import OrchestratorError
from ..lab import net
from ..lab.state import LabState
from ..ledger import Ledger
from ..ledger.telemetry import AlertRecord
from ..settings import Settings

PORT = 8443
START_TIMEOUT = 30.0


class DemoTelemetryError(OrchestratorError):
    """Raised when the demo's collector does not start, or what it should have received never arrives."""


class DemoCollector:
    def __init__(self, ws: Settings, state: LabState) -> None:
        self.ws = ws
        self.address = str(net.gateway(net.parse_subnet(state.subnet)))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://{self.address}:{PORT}"

    def start(self) -> None:
        """``collector init`` on the bridge address, then ``collector serve`` until it listens (bounded)."""
        config.init(self.ws, listen=f"{self.address}:{PORT}", url=None, sans=[], force=True)
        env = {**os.environ, "SENTRY_HOME": str(self.ws.home), "SENTRY_INVENTORIES": str(self.ws.inventories)}
        env.pop("SENTRY_DB_URL", None)  # the demo's ledger is the workspace's SQLite file
        log = (self.ws.home / "collector" / "serve.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "collector", "serve"], env=env, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DemoTelemetryError(
                    f"the collector exited with {self.proc.returncode}",
                    hint=f"see {self.ws.home / 'collector' / 'serve.log'}",
                )
            try:
                socket.create_connection((self.address, PORT), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise DemoTelemetryError(f"the collector did not listen on {self.url} within {START_TIMEOUT:.0f}s")

    def stop(self) -> None:
        process.stop(self.proc)
        self.proc = None


def wait_alert(ledger: Ledger, client: str, host: str, ip: str, timeout: float) -> AlertRecord:
    deadline = time.monotonic() + timeout
    while True:
        found = [a for a in fleet.alerts(ledger, client, host=host) if a.ip == ip]
        if found:
            return found[0]
        if time.monotonic() >= deadline:
            raise DemoTelemetryError(f"no alert about {ip} from {client}/{host} in fleet alerts after {timeout:.0f}s")
        time.sleep(0.2)


def wait_state(ledger: Ledger, client: str, host: str, want: str, timeout: float) -> float:
    """Seconds until ``fleet status`` says ``want`` for the host."""
    start = time.monotonic()
    while True:
        state = next((s.state for s in fleet.status(ledger, client) if s.host == host), None)
        if state == want:
            return time.monotonic() - start
        if time.monotonic() - start >= timeout:
            raise DemoTelemetryError(f"{client}/{host} is {state}, not {want}, after {timeout:.0f}s in fleet status")
        time.sleep(0.2)
