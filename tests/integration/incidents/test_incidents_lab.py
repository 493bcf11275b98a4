"""Incidents on real lab hosts: a real agent (its rule marked critical) attacked through its log, shipping to a
real collector over TLS that runs the incident engine (real clock) and pages a webhook receiver on loopback
through Apprise. An attack pages within 60 s; 500 alerts of one attack are one incident and one page; a stopped
agent (a silent host) opens an incident too. A lab of its own ("inc"), one enterprise host (24/7: the page
never waits for office hours)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import vault
from orchestrator.inventory import load
from orchestrator.lab.state import HostState
from orchestrator.ledger import Ledger

from ..conftest import LabEnv, Provisioned, provisioned_lab
from ..telemetry.conftest import GAME_LOG, Telemetry, running_telemetry, wait_for
from .receiver import Receiver, receiver

pytestmark = pytest.mark.lab

CLIENT, HOST = "incl", "inc-1"
CONFIG = "/etc/sentry/agent.json"
CRITICAL_RULES = "/etc/sentry/rules-critical.json"
PAGE_WITHIN_S = 60
ATTACKERS = [f"198.18.{i // 250}.{i % 250 + 1}" for i in range(500)]  # benchmark range: never a lab address
ENTERPRISE_THRESHOLD = 4  # playbooks/vars/tiers.yml


def put(env: LabEnv, host: HostState, path: str, text: str, append: bool = False) -> None:
    data = base64.b64encode(text.encode()).decode()
    env.ssh(host, f"echo {data} | base64 -d {'>>' if append else '>'} {path}", timeout=120)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Telemetry, Receiver, HostState]]:
    with (
        receiver() as hook,
        provisioned_lab(tmp_path_factory, "inc", 1, {CLIENT: ([HOST], "enterprise")}, {}) as (settings, lab_, hosts, _),
    ):
        inv = load(settings.inventories, CLIENT)
        with Ledger.open(settings.db_url, settings.home) as ledger:
            vault.set_secret(settings, inv, "collector_token", f"TOKEN{secrets.token_hex(12)}", ledger)
            vault.set_secret(settings, inv, "paging_primary", hook.url("incl"), ledger)
        provisioned = Provisioned(LabEnv(settings, lab_), CLIENT, {HOST: "enterprise"}, None, "")
        host = hosts[HOST]
        env = provisioned.env
        with running_telemetry(provisioned) as tel:
            # The shipped rules mark no rule critical; this host's agent gets the same rules with the game rule
            # marked critical (a release would ship them so), through its config's rules_file.
            rules = json.loads((Path(__file__).parents[3] / "agent" / "rules" / "rules.json").read_text())
            for rule in rules["rules"]:
                if rule["id"] == "game-bruteforce":
                    rule["severity"] = "critical"
            put(env, host, CRITICAL_RULES, json.dumps(rules))
            agent_conf = {**json.loads(env.ssh(host, f"cat {CONFIG}")), "rules_file": CRITICAL_RULES}
            put(env, host, CONFIG, json.dumps(agent_conf))
            env.ssh(host, f"chown sentry:sentry {CONFIG} {CRITICAL_RULES} && chmod 600 {CONFIG}")
            env.ssh(host, "systemctl restart sentry-agent")
            wait_for("the agent to run the critical rules", lambda: _active(env, host), 60)
            yield tel, hook, host


def _active(env: LabEnv, host: HostState) -> bool:
    return env.ssh(host, "systemctl is-active sentry-agent", check=False).strip() == "active"


def incidents(tel: Telemetry) -> list[dict[str, Any]]:
    with Ledger.open(tel.settings.db_url, tel.settings.home) as ledger:
        return [{**i.__dict__, "pages": [p.state for p in ledger.incident_pages([i.id])]} for i in ledger.incidents()]


def test_an_attack_pages_within_60_s_and_500_alerts_of_it_are_one_incident_and_one_page(
    lab: tuple[Telemetry, Receiver, HostState],
) -> None:
    tel, hook, host = lab
    env = tel.provisioned.env
    lines = "".join(f"LOGIN FAILED user=u{n} ip={ip}\n" for ip in ATTACKERS for n in range(ENTERPRISE_THRESHOLD))
    env.ssh(host, "mkdir -p /var/log/sentry-game")
    started = time.monotonic()
    put(env, host, GAME_LOG, lines, append=True)
    (page,) = hook.wait_for(1, timeout=PAGE_WITHIN_S)
    print(f"paged {time.monotonic() - started:.1f}s after the attack began")
    assert page[0] == "/incl" and "game-bruteforce attack" in page[1]["title"]
    # Every one of the 500 alerts (one per banned address) arrives and is merged into the one incident.
    found = wait_for(
        "all 500 alerts counted into the incident",
        lambda: (i := incidents(tel)) and i[0]["occurrences"] >= len(ATTACKERS) and i,
        120,
    )
    assert [(i["kind"], i["occurrences"], i["hosts"], i["pages"]) for i in found] == [
        ("attack", len(ATTACKERS), (HOST,), ["sent"])
    ]
    assert len(tel.rows("telemetry_alerts", host.name)) == len(ATTACKERS)
    time.sleep(6)  # a pass of the engine (5 s) over nothing new: still one page
    assert len(hook.pages) == 1
    env.ssh(host, "nft flush set inet sentry banned_v4", check=False)


def test_a_stopped_agent_opens_a_silent_host_incident(lab: tuple[Telemetry, Receiver, HostState]) -> None:
    tel, hook, host = lab
    env = tel.provisioned.env
    env.ssh(host, "systemctl stop sentry-agent")
    try:
        # Enterprise heartbeats every 15 s; silent after 3 intervals, then the engine's next pass (5 s).
        found = wait_for(
            "a silent-host incident",
            lambda: [i for i in incidents(tel) if i["kind"] == "silent_host"],
            3 * 15 + 40,
        )
        assert [(i["hosts"], i["state"]) for i in found] == [((HOST,), "open")]
        pages = hook.wait_for(2, timeout=30)
        assert f"host {HOST} is silent" in pages[1][1]["title"]
    finally:
        env.ssh(host, "systemctl start sentry-agent")
