"""The health gate's probe: ask each host's agent for /healthz over a strictly checked SSH connection.

A host is healthy only when the endpoint answered HTTP 200 with JSON whose status is "ok" and whose version is
the one expected. No answer, a timeout, an error page or garbage is never healthy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import remote
from ..errors import RemoteError
from ..inventory import Host, Inventory

HEALTH_URL = "http://127.0.0.1:9110/healthz"
# Runs on the host with its own python3 (the agent needs it anyway); prints the HTTP code, then the body.
PROBE = f"""python3 - <<'PY'
import urllib.request, urllib.error
try:
    r = urllib.request.urlopen("{HEALTH_URL}", timeout=3)
    print(r.status); print(r.read().decode(errors="replace"))
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode(errors="replace"))
except Exception as e:
    print(0); print(type(e).__name__ + ": " + str(e))
PY"""


@dataclass(frozen=True)
class Health:
    host: str
    healthy: bool
    version: str | None = None
    status: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def judge(host: str, output: str, expected_version: str | None) -> Health:
    """Pure verdict on the probe's output; every edge is unit-tested."""
    code_line, _, body = output.strip().partition("\n")
    try:
        code = int(code_line.strip())
    except ValueError:
        return Health(host, False, detail=f"garbage from the probe: {output.strip()[:120]!r}")
    if code == 0:
        return Health(host, False, detail=f"no answer from the agent: {body.strip()[:160]}")
    try:
        data = json.loads(body)
    except ValueError:
        return Health(host, False, detail=f"HTTP {code} without JSON: {body.strip()[:120]!r}")
    if not isinstance(data, dict):
        return Health(host, False, detail=f"HTTP {code} with unexpected JSON")
    version, status = data.get("version"), data.get("status")
    version = str(version) if version is not None else None
    if code != 200 or status != "ok":
        detail = f"HTTP {code}, status {status}, last error {data.get('last_error')}"
        return Health(host, False, version, str(status), detail)
    if expected_version is not None and version != expected_version:
        return Health(host, False, version, str(status), f"runs {version}, expected {expected_version}")
    return Health(host, True, version, str(status), f"healthy on {version}")


def probe_once(inv: Inventory, host: Host, expected_version: str | None, timeout: float = 10.0) -> Health:
    try:
        client = remote.connect(inv, host, timeout=timeout)
    except RemoteError as exc:
        return Health(host.name, False, detail=f"unreachable: {exc.message}")
    try:
        return judge(host.name, remote.run(client, PROBE, timeout=timeout).stdout, expected_version)
    except RemoteError as exc:
        return Health(host.name, False, detail=f"probe failed: {exc.message}")
    finally:
        client.close()


def wait_healthy(
    inv: Inventory, hosts: Sequence[Host], expected_version: str | None, timeout: float, interval: float = 2.0
) -> dict[str, Health]:
    """Probe every host until it is healthy on the expected version or ``timeout`` passes (then: last verdict)."""

    def until_healthy(host: Host) -> Health:
        deadline = time.monotonic() + timeout
        while True:
            verdict = probe_once(inv, host, expected_version, timeout=min(10.0, max(2.0, timeout)))
            if verdict.healthy or time.monotonic() + interval > deadline:
                return verdict
            time.sleep(interval)

    return remote.parallel(hosts, until_healthy, lambda name, exc: Health(name, False, detail=f"unreachable: {exc}"))
