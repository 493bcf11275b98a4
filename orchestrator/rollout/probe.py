"""The health gate's probe: ask each host's agent for /healthz over a strictly checked SSH connection.

A host is healthy only when the endpoint answered HTTP 200 with JSON whose status is "ok" and whose version is
the one expected. No answer, a timeout, an error page or garbage is never healthy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import remote
from ..errors import RemoteError
from ..inventory import Host, Inventory

HEALTH_URL = "http://127.0.0.1:9110/healthz"
# One probe's bound (connect and answer); a wait never runs past its own timeout either.
PROBE_TIMEOUT = 10.0
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


def probe_once(target: Any, host: str, expected_version: str | None) -> Health:
    """One probe through ``target`` (a bounded testinfra host, :func:`remote.testinfra_host`)."""
    try:
        out = target.run(PROBE)
    except RemoteError as exc:  # the command's bound passed (CommandTimeout), or ssh could not be started
        return Health(host, False, detail=f"probe failed: {exc.message}")
    if out.rc == 255:  # ssh's own failure: no connection, or the pinned key did not match
        return Health(host, False, detail=f"unreachable: {out.stderr.strip()[-200:] or 'ssh failed'}")
    return judge(host, out.stdout, expected_version)


def wait_healthy(
    inv: Inventory,
    hosts: Sequence[Host],
    expected_version: str | None,
    timeout: float,
    *,
    home: Path,
    interval: float = 2.0,
) -> dict[str, Health]:
    """Probe every host until it is healthy on the expected version or ``timeout`` passes (then: last verdict).

    ``timeout`` bounds the whole wait, connecting included: each probe gets at most what is left of it. The probes
    go over OpenSSH with the masters of the state home ``home`` (:mod:`orchestrator.sshmux`), so right after a
    playbook run they ride the connection the run opened instead of logging in again."""
    ssh_config = remote.write_ssh_config(inv, home / "probe" / f"ssh_config-{inv.client}", home)

    def until_healthy(host: Host) -> Health:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            target = remote.testinfra_host(host.name, ssh_config, max(1.0, min(PROBE_TIMEOUT, left)))
            verdict = probe_once(target, host.name, expected_version)
            if verdict.healthy or time.monotonic() + interval > deadline:
                return verdict
            time.sleep(interval)

    return remote.parallel(hosts, until_healthy, lambda name, exc: Health(name, False, detail=f"unreachable: {exc}"))
