"""Telemetry: Sentry's collector on the lab bridge address, then what the agents report home (the attack's
alert in ``fleet alerts``, a host stopped on purpose turning silent in ``fleet status``)."""

from __future__ import annotations

from ... import remote
from ..cast import ATTACKER, CLIENTS
from ..collector import DemoCollector, wait_alert, wait_state
from ..stage import Stage


def start_collector(stage: Stage) -> None:
    collector = DemoCollector(stage.ws, stage.state)
    collector.start()
    # Set before anything else can fail: the runner stops it at the end, whatever happens.
    stage.collector = collector
    stage.say(f"collector listening on {collector.url} (TLS; agents pin its certificate)", "ok")


def reports_home(stage: Stage) -> None:
    client, target = CLIENTS[0].name, CLIENTS[0].hosts[1]
    alert = wait_alert(stage.ledger, client, target, ATTACKER, 30)
    stage.say(f"{client}/{target}'s alert in fleet alerts: {alert.rule} {alert.ip} {alert.action}", "ok")
    dark = CLIENTS[1]
    host = dark.hosts[0]
    wait_state(stage.ledger, dark.name, host, "online", 60)
    inv = stage.invs[dark.name]
    conn = remote.connect(inv, inv.host(host))
    try:
        remote.run(conn, "systemctl stop sentry-agent")
        took = wait_state(stage.ledger, dark.name, host, "silent", 3 * 15 + 5)
        stage.say(f"{dark.name}/{host}: agent stopped on purpose, silent in fleet status after {took:.1f}s", "ok")
    finally:
        remote.run(conn, "systemctl start sentry-agent")
        conn.close()
