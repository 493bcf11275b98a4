"""Each gate really stops a wave, on lab hosts, through the executor with the real Ansible engine: an agent that
answers /healthz with a state other than ok, an agent that never answers, a smoke check failing on a host whose
agent is healthy, and the failure budget (a failure inside it continues, one more halts). Each halt rolls the
touched hosts back, healthy on their previous release; later waves are never touched.

The client's track (its tracks.yml) drops the soak and shortens the health wait: what is tested is that a gate
stops the wave, not how long it waits. Every test leaves the hosts on the tree's release."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from orchestrator import provision, releases
from orchestrator.ledger import Ledger
from orchestrator.releases import signing
from orchestrator.rollout import service
from orchestrator.rollout.execute import RolloutEvent, RolloutHalted, RolloutIncomplete

from .conftest import Provisioned
from .test_bounded import tarpit, with_tarpit  # noqa: F401 - the tarpit fixture

pytestmark = pytest.mark.lab

AGENT = Path(__file__).resolve().parents[2] / "agent"
TRACKS = {
    "hotfix": {
        "waves": [{"name": "canary", "hosts_per_client": 1}, {"name": "rest", "percent": 100}],
        "soak_seconds": 0,
        "health_timeout_seconds": 20,
        "failure_budget": {"max_failed": 1, "max_failed_percent": None},
    }
}


@pytest.fixture(scope="module")
def gated(provisioned: Provisioned) -> Iterator[Provisioned]:
    settings = provisioned.env.settings
    if not signing.public_key_path(settings.home).exists():
        signing.keygen(settings.home)
    tracks = settings.inventories / provisioned.client / "tracks.yml"
    tracks.write_text(yaml.safe_dump(TRACKS))
    try:
        yield provisioned
    finally:
        tracks.unlink()


def names(p: Provisioned) -> list[str]:
    return sorted(h.name for h in p.env.hosts())


def running(p: Provisioned, name: str) -> str:
    host = next(h for h in p.env.hosts() if h.name == name)
    return p.env.ssh(host, "readlink /opt/sentry/current").strip().rsplit("/", 1)[-1]


def roll(p: Provisioned, version: str) -> tuple[str | None, list[RolloutEvent]]:
    events: list[RolloutEvent] = []
    uid: list[str] = []
    with Ledger.open(p.env.settings.db_url, p.env.settings.home) as ledger:
        planned = service.prepare(p.env.settings, ledger, version, [p.client])
        service.execute(p.env.settings, ledger, planned, on_event=events.append, on_created=uid.append)
    return (uid[0] if uid else None), events


def assert_halted_and_rolled_back(p: Provisioned, version: str, gate_words: str, exc: RolloutHalted) -> None:
    assert gate_words in exc.message and "rolled back and healthy" in exc.message, exc.message
    assert {running(p, n) for n in names(p)} == {"1.0.0"}
    with Ledger.open(p.env.settings.db_url, p.env.settings.home) as ledger:
        record = ledger.rollouts(limit=1)[0]
        assert record.release_version == version and record.state == "rolled_back"
        statuses = {h.host: h.status for h in record.hosts}
        assert {r.host: r.release_version for r in ledger.host_releases(p.client)} == dict.fromkeys(names(p), "1.0.0")
    canary = names(p)[0]
    assert statuses[canary] == "rolled_back"
    assert all(statuses[n] == "pending" for n in names(p)[1:]), statuses  # the later wave was never touched


def test_health_gate_stops_an_agent_that_reports_failing(gated: Provisioned, tmp_path: Path) -> None:
    rules = json.loads((AGENT / "rules" / "rules.json").read_text())
    rules["self_test"] = "fail"
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    releases.build_release(AGENT, gated.env.settings.home, version="1.0.11", rules_file=tmp_path / "rules.json")
    with pytest.raises(RolloutHalted) as info:
        roll(gated, "1.0.11")
    assert_halted_and_rolled_back(gated, "1.0.11", "canary gate failed", info.value)
    with Ledger.open(gated.env.settings.db_url, gated.env.settings.home) as ledger:
        canary = ledger.rollouts(limit=1)[0].hosts[0]
    assert "health gate" in str(canary.detail["why"]) and "failing" in str(canary.detail["why"]), canary.detail


def test_health_gate_stops_an_agent_that_never_answers(gated: Provisioned, tmp_path: Path) -> None:
    source = tmp_path / "agent"
    shutil.copytree(AGENT, source, ignore=shutil.ignore_patterns("__pycache__"))
    main = source / "sentry_agent" / "__main__.py"
    text = main.read_text()
    hang = "    import time\n\n    while True:  # fault injection: runs, never listens\n        time.sleep(60)\n"
    main.write_text(text.replace("    return _run(Agent(config, rules, version))\n", hang, 1))
    assert main.read_text() != text
    releases.build_release(source, gated.env.settings.home, version="1.0.12")
    with pytest.raises(RolloutHalted) as info:
        roll(gated, "1.0.12")
    assert_halted_and_rolled_back(gated, "1.0.12", "canary gate failed", info.value)


def break_ban_sets(p: Provisioned, name: str) -> None:
    host = next(h for h in p.env.hosts() if h.name == name)
    p.env.ssh(host, "nft flush chain inet sentry input && nft delete set inet sentry banned_v4")


def repair_firewalls(p: Provisioned) -> None:
    """The converge sees the live drift and re-applies the ruleset (the file on disk never changed)."""
    with Ledger.open(p.env.settings.db_url, p.env.settings.home) as ledger:
        fixed = provision.provision(p.env.settings, p.client, ledger, tags=("firewall",))
    assert fixed.ok
    for h in p.env.hosts():
        p.env.ssh(h, "nft list set inet sentry banned_v4 >/dev/null")


def test_smoke_gate_stops_a_healthy_agent_on_a_broken_host(gated: Provisioned) -> None:
    releases.build_release(AGENT, gated.env.settings.home, version="1.0.13")
    break_ban_sets(gated, names(gated)[0])
    try:
        with pytest.raises(RolloutHalted) as info:
            roll(gated, "1.0.13")
        assert_halted_and_rolled_back(gated, "1.0.13", "canary gate failed", info.value)
        with Ledger.open(gated.env.settings.db_url, gated.env.settings.home) as ledger:
            record = ledger.rollouts(limit=1)[0]
        canary = next(h for h in record.hosts if h.host == names(gated)[0])
        assert "smoke gate" in str(canary.detail["why"]) and "firewall-sets" in str(canary.detail["why"])
    finally:
        repair_firewalls(gated)


def test_budget_a_failure_inside_continues_one_more_halts(gated: Provisioned) -> None:
    _, second, third = names(gated)
    releases.build_release(AGENT, gated.env.settings.home, version="1.0.14")
    break_ban_sets(gated, third)
    try:
        with pytest.raises(RolloutIncomplete) as inside:
            roll(gated, "1.0.14")
        assert f"{gated.client}/{third} (smoke gate" in inside.value.message, inside.value.message
        assert running(gated, second) == "1.0.14"
        with Ledger.open(gated.env.settings.db_url, gated.env.settings.home) as ledger:
            first = ledger.rollouts(limit=1)[0]
            assert first.state == "completed_with_failures"
            child = service.rollback(gated.env.settings, ledger, first.uid, on_event=lambda _e: None)
            assert ledger.rollout(child).state == "rolled_back"  # type: ignore[union-attr]
        assert {running(gated, n) for n in names(gated)} == {"1.0.0"}
        releases.build_release(AGENT, gated.env.settings.home, version="1.0.15")
        break_ban_sets(gated, second)
        with pytest.raises(RolloutHalted) as beyond:
            roll(gated, "1.0.15")
        assert "failure budget" in beyond.value.message and "rolled back and healthy" in beyond.value.message
        assert {running(gated, n) for n in names(gated)} == {"1.0.0"}
    finally:
        repair_firewalls(gated)


def test_a_failure_ansible_rescues_is_not_a_healthy_host(gated: Provisioned, tmp_path: Path) -> None:
    """The agent play switches the release and then hits a failure that a rescue swallows: Ansible reports the host
    ok (rescued=1, failures=0), yet the canary gate must see a failed host, halt, and roll it back."""
    from orchestrator import paths
    from orchestrator.rollout.execute import Executor
    from orchestrator.runner import run_playbook

    playbook = tmp_path / "rescued.yml"
    playbook.write_text(
        f"---\n- name: Ship the release\n  ansible.builtin.import_playbook: {paths.playbook('agent.yml')}\n"
        "- name: A failure that the play rescues\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Fail and rescue\n      block:\n        - name: Fail on purpose\n"
        "          ansible.builtin.fail:\n            msg: injected failure\n      rescue:\n"
        "        - name: Swallow it\n          ansible.builtin.debug:\n            msg: rescued\n"
    )

    def rescuing(request, settings, on_event, cancel):  # type: ignore[no-untyped-def]
        agent_run = request.playbook.name == "agent.yml"
        chosen = replace(request, playbook=playbook) if agent_run else request
        return run_playbook(chosen, settings, on_event=on_event, cancel=cancel)

    env = gated.env
    release = releases.build_release(AGENT, env.settings.home, version="1.0.16")
    with Ledger.open(env.settings.db_url, env.settings.home) as ledger:
        planned = service.prepare(env.settings, ledger, "1.0.16", [gated.client])
        uid = "ro-rescued"
        ledger.create_rollout(uid, release_version="1.0.16", track="hotfix", plan=planned.plan.to_json(),
                              clients=[gated.client], hosts=service._hosts_rows(planned, [gated.client]))  # fmt: skip
        # Held as this process holds it: the executor renews the lock as its holder (host name and pid).
        ledger.acquire_rollout_locks([gated.client], uid, holder_host=socket.gethostname(), holder_pid=os.getpid(),
                                     is_stale=lambda _lock: False)  # fmt: skip
        try:
            executor = Executor(env.settings, ledger, release, planned.plan, uid, dict(planned.inventories),
                                engine=rescuing)  # fmt: skip
            with pytest.raises(RolloutHalted) as info:
                executor.run()
        finally:
            ledger.release_rollout_locks(uid)
        canary = next(h for h in ledger.rollout(uid).hosts if h.host == names(gated)[0])  # type: ignore[union-attr]
    assert_halted_and_rolled_back(gated, "1.0.16", "canary gate failed", info.value)
    assert "rescued" in str(canary.detail), canary.detail


def test_a_tarpit_host_fails_its_wave_in_time_and_the_others_get_the_release(
    gated: Provisioned,
    tmp_path: Path,
    tarpit: int,  # noqa: F811
) -> None:
    """A host that accepts TCP and never speaks SSH: its wave's run reports it unreachable at the connect timeout,
    the other hosts take the release, and the rollout ends completed_with_failures (within the budget) in time."""
    import dataclasses
    import time

    from orchestrator import inventory

    env = gated.env
    first, second, third = names(gated)
    inv = with_tarpit(inventory.load(env.settings.inventories, gated.client), third, tarpit, tmp_path / "inv")
    settings = dataclasses.replace(env.settings, inventories=inv.path.parent)
    releases.build_release(AGENT, env.settings.home, version="1.0.17")
    started = time.monotonic()
    with Ledger.open(settings.db_url, settings.home) as ledger:
        planned = service.prepare(settings, ledger, "1.0.17", [gated.client])
        with pytest.raises(RolloutIncomplete) as info:
            service.execute(settings, ledger, planned, on_event=lambda _e: None)
        record = ledger.rollouts(limit=1)[0]
        statuses = {h.host: h.status for h in record.hosts}
        assert time.monotonic() - started < 240, statuses
        assert f"{gated.client}/{third}" in info.value.message and "unreachable" in info.value.message
        assert statuses == {first: "healthy", second: "healthy", third: "pending"}, statuses
        assert running(gated, first) == running(gated, second) == "1.0.17"
        # Back to the tree's release, as every test here leaves the hosts (the real inventory: the host is back).
        child = service.rollback(env.settings, ledger, record.uid, on_event=lambda _e: None)
        assert ledger.rollout(child).state == "rolled_back"  # type: ignore[union-attr]
    assert {running(gated, n) for n in names(gated)} == {"1.0.0"}
