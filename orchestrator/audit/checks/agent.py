"""sentry_agent: the release the ledger records is installed, current, running, healthy, and sandboxed."""

from __future__ import annotations

import json
from typing import Any

from ..expected import Expected
from .base import Check, Finding, compare, expect_file, json_file, missing

CONFIG = "/etc/sentry/agent.json"
CAP_NET_ADMIN = 1 << 12
HEALTH = (
    'python3 -c \'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9110/healthz", '
    "timeout=5).read().decode())'"
)


def service(host: Any, exp: Expected) -> Finding:
    unit = host.service("sentry-agent")
    return compare({"enabled": True, "running": True}, {"enabled": unit.is_enabled, "running": unit.is_running})


def _unrecorded(found: str | None) -> Finding:
    return Finding(
        False, "a release recorded in the ledger for this host", f"the ledger records none; host runs {found}"
    )


def release(host: Any, exp: Expected) -> Finding:
    current = host.file("/opt/sentry/current")
    target = current.linked_to if current.is_symlink else None
    version_file = host.file("/opt/sentry/current/VERSION")
    version = version_file.content_string.strip() if version_file.exists else None
    if exp.release is None:
        return _unrecorded(version)
    return compare(
        {"current": f"/opt/sentry/releases/{exp.release}", "VERSION": exp.release},
        {"current": target, "VERSION": version},
    )


def health(host: Any, exp: Expected) -> Finding:
    out = host.run(HEALTH)
    if out.rc != 0:
        return Finding(False, f"status=ok, version={exp.release}", "no answer on 127.0.0.1:9110/healthz")
    try:
        data = json.loads(out.stdout)
    except ValueError:
        return Finding(False, f"status=ok, version={exp.release}", f"not JSON: {out.stdout[:80]!r}")
    return compare(
        {"status": "ok", "version": exp.release}, {"status": data.get("status"), "version": data.get("version")}
    )


def config(host: Any, exp: Expected) -> Finding:
    facts, data = json_file(host, CONFIG)
    if data is None:
        return missing(CONFIG)
    return compare(
        {
            **expect_file("sentry:sentry", "0600"),
            "client": exp.client,
            "tier": exp.tier,
            "never_ban": list(exp.mgmt_networks),
            "heartbeat_interval_seconds": exp.heartbeat_interval_seconds,
        },
        {
            **facts,
            "client": data.get("client"),
            "tier": data.get("tier"),
            "never_ban": data.get("never_ban"),
            "heartbeat_interval_seconds": data.get("heartbeat_interval_seconds"),
        },
    )


def sandbox(host: Any, exp: Expected) -> Finding:
    pid = host.run("systemctl show -p MainPID --value sentry-agent").stdout.strip()
    wanted = {"user": "sentry", "capabilities": "cap_net_admin only", "no new privileges": True}
    if not pid or pid == "0":
        return compare(wanted, {"user": "(not running)", "capabilities": "(not running)", "no new privileges": None})
    status_file = host.file(f"/proc/{pid}/status")
    status = dict(line.split(":", 1) for line in status_file.content_string.splitlines() if ":" in line)
    uid = status.get("Uid", "").split()
    user = host.user("sentry")
    eff = int(status.get("CapEff", "0").strip(), 16)
    bnd = int(status.get("CapBnd", "0").strip(), 16)
    return compare(
        wanted,
        {
            "user": "sentry" if uid and user.exists and uid[0] == str(user.uid) else f"uid {uid[0] if uid else '?'}",
            "capabilities": "cap_net_admin only" if eff == bnd == CAP_NET_ADMIN else f"eff={eff:#x} bnd={bnd:#x}",
            "no new privileges": status.get("NoNewPrivs", "").strip() == "1",
        },
    )


CHECKS = (
    Check("agent.service", "The sentry-agent service is enabled and running.", "agent", service),
    Check("agent.release", "/opt/sentry/current is the release the ledger records, and its VERSION agrees.",
          "agent", release),
    Check("agent.health", "The agent's health endpoint answers ok with the ledger's release version.", "agent", health),
    Check("agent.config", "/etc/sentry/agent.json is sentry-owned 0600 and names the client, tier and management "
          "networks.", "agent", config),
    Check("agent.sandbox", "The agent runs as the sentry account with only CAP_NET_ADMIN and no new privileges.",
          "agent", sandbox),
)  # fmt: skip
