"""The fleet comes up: lab hosts, two clients onboarded, their keys pinned, preflighted and provisioned."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import yaml

from ... import clients, pins, preflight, provision
from ...releases import signing
from ...runner import Cancellation, RunEvent
from ...tiers import get_tier
from ..cast import CLIENTS, DEMO_GROUP_VARS, DEMO_TRACKS, LAB_HOSTS
from ..records import DemoError
from ..stage import Stage


def lab_up(stage: Stage) -> None:
    stage.lab_state = stage.lab.up(LAB_HOSTS, stage.say)


def onboard(stage: Stage) -> None:
    state, ledger = stage.state, stage.ledger
    lab_hosts = list(state.hosts.values())
    signing.keygen(stage.ws.home, ledger=ledger)
    stage.say("release signing key created (ed25519)")
    taken = 0
    for c in CLIENTS:
        mine = lab_hosts[taken : taken + len(c.hosts)]
        taken += len(c.hosts)
        spec = clients.build_spec(
            name=c.name,
            tier=c.tier,
            hosts=[f"{n}={h.address}" for n, h in zip(c.hosts, mine, strict=True)],
            mgmt_networks=[state.subnet],
            window_text=c.window,
            key_file=str(stage.lab.key),
            game_ports=["7777", "27015/udp"],
            contacts=[c.contact],
        )
        inv = clients.create(stage.ws, spec, ledger)
        (inv.path / "tracks.yml").write_text(yaml.safe_dump(DEMO_TRACKS, sort_keys=False))
        group_vars = inv.path / "group_vars" / "all.yml"
        group_vars.write_text(group_vars.read_text() + "# demo: a broken agent fails in 12 s\n" + DEMO_GROUP_VARS)
        stage.invs[c.name] = inv
        for n, h in zip(c.hosts, mine, strict=True):
            stage.host_map[f"{c.name}/{n}"] = (h.name, h.address)
        tier = get_tier(c.tier)
        stage.say(
            f"{c.name}: {c.tier} tier ({', '.join(tier.components)}; support {tier.support_hours}), "
            f"{len(c.hosts)} host(s): " + ", ".join(f"{n}={h.address}" for n, h in zip(c.hosts, mine, strict=True)),
            "ok",
        )
    stage.say(f"inventories rendered under {stage.ws.inventories}")


def pin(stage: Stage) -> None:
    for name, inv in stage.invs.items():
        scanned = pins.scan(inv, inv.hosts)
        pins.apply(inv, scanned, stage.ledger)
        for row in scanned.rows:
            fp = row.key.fingerprint if row.key else "?"
            stage.say(f"{name}/{row.host} {row.address}: {fp} ({row.state})")
    stage.say("every SSH client (paramiko, Ansible, testinfra) now checks strictly against these keys", "ok")


def preflight_all(stage: Stage) -> None:
    for name, inv in stage.invs.items():
        report = preflight.preflight(inv)
        for h in report.hosts:
            if h.ok:
                facts = "; ".join(c.detail for c in h.checks if c.id in ("python", "os", "disk"))
                stage.say(f"{name}/{h.host}: ok in {h.seconds:.1f}s ({facts})", "ok")
            else:
                bad = h.error or "; ".join(c.detail for c in h.checks if not c.ok)
                stage.say(f"{name}/{h.host}: {bad}", "warn")
        if not report.ok:
            raise DemoError(f"preflight failed on {name}: {', '.join(report.failed)}")


def provision_all(stage: Stage) -> None:
    done: dict[str, int] = dict.fromkeys(stage.invs, 0)

    def watcher(client: str) -> Callable[[RunEvent], None]:
        def on_event(event: RunEvent) -> None:
            if event.kind == "task_start":
                stage.say(f"{client}: {event.task}", "status")
            elif event.kind in ("ok", "changed", "skipped"):
                done[client] += 1
            elif event.kind in ("failed", "unreachable"):
                stage.say(f"{client}/{event.host}: {event.kind} at {event.task}: {(event.message or '')[:160]}", "warn")

        return on_event

    # Both clients at once (two runs, each recorded in the ledger under its own id): a one-host run waits on the
    # network most of the time, so it costs little beside the three-host one.
    cancels = {name: Cancellation() for name in stage.invs}
    with ThreadPoolExecutor(max_workers=len(stage.invs)) as pool:
        futures = {}
        for name, inv in stage.invs.items():
            stage.say(f"{name}: preflight, then site.yml on {len(inv.hosts)} host(s) for the {inv.tier} tier")
            futures[name] = pool.submit(
                provision.provision, stage.ws, name, stage.ledger, on_event=watcher(name), cancel=cancels[name]
            )
        try:
            outcomes = {name: f.result() for name, f in futures.items()}
        except BaseException:  # Ctrl-C, or the other run failed: stop both runs now, not when they end
            for cancel in cancels.values():
                cancel.request(force=True)
            raise
    for name, outcome in outcomes.items():
        run = outcome.run
        if run is None or not outcome.ok:
            where = f"see {run.artifact_dir / 'stdout'}" if run else "preflight failed"
            raise DemoError(f"provisioning {name} failed", hint=where)
        changed = sum(o.changed for o in run.hosts.values())
        stage.say(
            f"{name}: {len(run.hosts)} host(s) converged, {changed} change(s) in {done[name]} task results, "
            f"agent {outcome.bundle.version}; recorded as run {run.run_id}",
            "ok",
        )
