"""Releases: a signed hotfix through canary and waves, a broken one halted at the canary and rolled back, and a
feature release that reaches only the client whose on-site training was signed off."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ... import releases, training
from ...paths import project_root
from ...rollout import service
from ...rollout.execute import RolloutHalted
from ...rollout.probe import wait_healthy
from ..cast import BROKEN, CLIENTS, FEATURE, HOTFIX, TRAINER, TRAINING_MODULE
from ..records import DemoError
from ..stage import Stage


def build(stage: Stage, version: str, **kw: Any) -> releases.Release:
    release = releases.build_release(
        project_root() / "agent", stage.ws.home, version=version, ledger=stage.ledger, **kw
    )
    stage.say(
        f"built {version} ({release.track}): {release.bundle.name}, sha256 {release.sha256[:16]}..., "
        f"signed by {release.signed_by}"
    )
    return release


def show_plan(stage: Stage, version: str) -> None:
    _, p, _ = service.make_plan(stage.ws, stage.ledger, version, list(stage.invs))
    for w in p.waves:
        stage.say(f"plan: wave {w.index} {w.name}: {', '.join(f'{h.client}/{h.host}' for h in w.hosts)}")
    for wait in p.waiting:
        until = f" (session booked for {wait.until})" if wait.until else ""
        stage.say(f"plan: {wait.client} waits: {wait.reason}{until}")
    stage.say(f"plan: gates {', '.join(p.gates)}; a canary failure halts at once")


def running(stage: Stage) -> dict[str, str | None]:
    """What each host's agent reports on /healthz right now (None when it does not answer healthy)."""
    out: dict[str, str | None] = {}
    for name, inv in stage.invs.items():
        verdicts = wait_healthy(inv, inv.hosts, None, timeout=10, home=stage.ws.home)
        for host, v in verdicts.items():
            out[f"{name}/{host}"] = v.version if v.healthy else None
    return out


def expect(what: str, want: dict[str, str], running: dict[str, str | None]) -> None:
    wrong = {k: running.get(k) for k, v in want.items() if running.get(k) != v}
    if wrong:
        detail = ", ".join(f"{k} runs {v or 'nothing healthy'} (expected {want[k]})" for k, v in wrong.items())
        raise DemoError(f"{what}: {detail}")


def hotfix(stage: Stage) -> None:
    build(stage, HOTFIX, notes="Hotfix: faster detection of credential stuffing.")
    show_plan(stage, HOTFIX)
    uid = service.start(stage.ws, stage.ledger, HOTFIX, list(stage.invs), on_event=stage.rollout_event)
    expect("after the hotfix", dict.fromkeys(stage.host_map, HOTFIX), running(stage))
    stage.say(f"rollout {uid} completed: every host healthy on {HOTFIX}", "ok")


def broken(stage: Stage) -> None:
    client = CLIENTS[0].name
    rules = json.loads((project_root() / "agent" / "rules" / "rules.json").read_text())
    rules["self_test"] = "fail"  # the agent refuses to start with these rules: a bad release
    bad_rules = stage.ws.home / "broken-rules.json"
    bad_rules.write_text(json.dumps(rules))
    build(stage, BROKEN, rules_file=bad_rules, notes="A release whose agent cannot start.")
    stage.say(f"rolling {BROKEN} out to {client}")
    try:
        service.start(stage.ws, stage.ledger, BROKEN, [client], on_event=stage.rollout_event)
    except RolloutHalted as exc:
        stage.say(f"halted as it should: {exc.message}", "ok")
    else:
        raise DemoError(f"the broken release {BROKEN} was not stopped by the canary gate")
    expect("after the rollback", dict.fromkeys(stage.host_map, HOTFIX), running(stage))
    record = stage.ledger.rollouts(limit=1)[0]
    untouched = sorted(f"{h.client}/{h.host}" for h in record.hosts if h.status == "pending")
    stage.say(
        f"rollout {record.uid} is {record.state}: every host healthy on {HOTFIX} again; later waves never "
        f"touched ({', '.join(untouched) or 'none'})",
        "ok",
    )


def feature(stage: Stage) -> None:
    trained, waiting = CLIENTS[0].name, CLIENTS[1].name
    ws, ledger = stage.ws, stage.ledger
    build(
        stage,
        FEATURE,
        track="feature",
        requires_training=TRAINING_MODULE,
        notes="Feature: the live detection dashboard.",
    )
    today = dt.datetime.now(dt.UTC).date()
    _, paths = training.schedule(ws, ledger, trained, FEATURE, date=today.isoformat(), trainer=TRAINER)
    stage.say(f"{trained}: on-site training scheduled for today; packet: {paths[-1]}")
    training.signoff(ws, ledger, trained, FEATURE, trainer=TRAINER, attendees=[CLIENTS[0].contact.split(" <")[0]])
    stage.say(f"{trained}: training signed off by {TRAINER}", "ok")
    later = today + dt.timedelta(days=14)
    training.schedule(ws, ledger, waiting, FEATURE, date=later.isoformat(), trainer=TRAINER)
    stage.say(f"{waiting}: training booked for {later.isoformat()}, not signed off yet")
    show_plan(stage, FEATURE)
    uid = service.start(ws, ledger, FEATURE, list(stage.invs), on_event=stage.rollout_event)
    want = {k: FEATURE if k.startswith(f"{trained}/") else HOTFIX for k in stage.host_map}
    expect("after the feature release", want, running(stage))
    stage.say(
        f"rollout {uid} completed: {trained} runs {FEATURE}; {waiting} stays on {HOTFIX} until its training", "ok"
    )
