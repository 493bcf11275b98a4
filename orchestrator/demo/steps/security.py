"""Security: an attack on one host gets its source banned (and a management address never), and both clients
are audited into signed evidence bundles."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

from ... import remote
from ...audit import run_audit
from ..cast import ATTACKER, BAN_TIMEOUT, CLIENTS, GAME_LOG
from ..records import DemoError
from ..stage import Stage


def attack(stage: Stage) -> None:
    client = CLIENTS[0]
    target_name = client.hosts[1]
    inv = stage.invs[client.name]
    host = inv.host(target_name)
    insider = str(ipaddress.IPv4Network(stage.state.subnet).network_address + 250)
    burst = "".join(f"LOGIN FAILED user=player{i} ip={ip}\n" for i in range(12) for ip in (ATTACKER, insider))
    conn = remote.connect(inv, host)
    try:
        remote.run(conn, f"mkdir -p {Path(GAME_LOG).parent} && touch {GAME_LOG}")
        stage.say(
            f"{client.name}/{target_name}: 12 failed game logins each from {ATTACKER} (outside) "
            f"and {insider} (Sentry's management network)"
        )
        remote.run(conn, f"cat >> {GAME_LOG} <<'EOF'\n{burst}EOF")
        start = time.monotonic()
        banned = ""
        while time.monotonic() - start < BAN_TIMEOUT and ATTACKER not in banned:
            time.sleep(0.5)
            banned = remote.run(conn, "nft list set inet sentry banned_v4").stdout
        took = time.monotonic() - start
        if ATTACKER not in banned:
            raise DemoError(f"{ATTACKER} was not banned within {BAN_TIMEOUT:.0f}s on {target_name}")
        stage.say(f"{ATTACKER} banned after {took:.1f}s (nftables set inet sentry banned_v4)", "ok")
        time.sleep(1.0)
        banned = remote.run(conn, "nft list set inet sentry banned_v4").stdout
        if insider in banned:
            raise DemoError(f"the management address {insider} was banned on {target_name}")
        stage.say(f"{insider} not banned: management networks never are", "ok")
        remote.run(
            conn,
            f"fail2ban-client unban {ATTACKER} >/dev/null 2>&1; "
            f"nft delete element inet sentry banned_v4 '{{ {ATTACKER} }}' 2>/dev/null; true",
        )
        stage.say("ban lifted again, so the audit sees the host as provisioned")
    finally:
        conn.close()


def audit(stage: Stage) -> None:
    out_dir = stage.ws.home / "evidence"
    # Every testinfra check on every host; the check-mode converge (drift in anything the stack manages) for
    # nightowl only: on acme's three hosts it would add a minute to the demo.
    for c, converge in ((CLIENTS[0], False), (CLIENTS[1], True)):
        how = "testinfra checks and a check-mode converge" if converge else "testinfra checks"
        stage.say(f"{c.name}: {how}")
        outcome = run_audit(
            stage.ws, c.name, stage.ledger, out_dir=out_dir, converge_check=converge, on_progress=stage.status(c.name)
        )
        hosts = ", ".join(
            f"{h}: {r.status} ({sum(x.status == 'pass' for x in r.checks)} checks passed)"
            for h, r in sorted(outcome.hosts.items())
        )
        stage.report.audits[c.name] = {"status": outcome.status, "bundle": str(outcome.bundle)}
        stage.say(f"{c.name}: {outcome.status}: {hosts}", "ok" if outcome.status == "compliant" else "warn")
        stage.say(f"{c.name}: signed evidence bundle {outcome.bundle}")
        if outcome.status != "compliant":
            raise DemoError(
                f"the audit of {c.name} found {outcome.status}", hint=f"see the evidence bundle {outcome.bundle}"
            )
