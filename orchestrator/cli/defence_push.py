"""``sentryctl defence push|revert|proposals|status``: packs canaried out to the hosts, and the kill switch.

Registered on the ``defence`` group by :func:`register_push`; each command parses, calls the core
(:mod:`orchestrator.defence.push`, ``.revert``, ``.proposals``) and formats; progress on stderr, ``--json`` on stdout.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
from rich.table import Table

from ..defence import proposals as collective
from ..defence import push as pushes
from ..defence import revert as kill_switch
from ..defence.errors import DefenceError
from ..errors import ConfigError, OrchestratorError
from ..fleet import parse_duration
from ..ledger.defence_pushes import PushRecord
from .context import AppContext, pass_app
from .options import confirm, json_option, yes_option
from .rollout import interruptible, show_event


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value) if value.strip() != "0" else dt.timedelta(0)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def push_json(app: AppContext, uid: str | None, error: OrchestratorError | None) -> dict[str, Any]:
    record = app.ledger.push(uid) if uid else None
    return {
        "push": uid,
        "state": record.state if record else None,
        "ok": error is None,
        "exit_code": 0 if error is None else error.exit_code,
        "error": None if error is None else error.message,
        "halt_reason": record.halt_reason if record else None,
        "hosts": dict(record.hosts) if record else {},
    }


def register_push(defence: click.Group) -> None:
    """Add push, revert, proposals and status to the ``defence`` group."""
    defence.add_command(push)
    defence.add_command(revert)
    defence.add_command(proposals)
    defence.add_command(status)


def _run(app: AppContext, as_json: bool, box: list[str], action: Any) -> None:
    try:
        uid = action()
    except OrchestratorError as exc:
        if as_json:
            app.emit_json(push_json(app, box[0] if box else None, exc))
        raise
    if as_json:
        app.emit_json(push_json(app, uid, None))
    else:
        app.out.print(f"push {uid} completed")


@click.command()
@click.argument("version", required=False)
@click.option("--client", "-c", "clients", multiple=True, metavar="NAME", help="A client to push to (repeatable).")
@click.option("--all", "all_clients", is_flag=True, help="Every client under the inventories folder.")
@click.option("--emergency", metavar="REASON", help="Ignore maintenance windows (recorded with the reason).")
@click.option("--resume", "resume_uid", metavar="UID", help="Carry on push UID (its process died, or a window opened).")
@click.option(
    "--dwell", metavar="DURATION", callback=_duration, help="Override the tiers' canary dwell (recorded): 30s, 5m."
)
@click.option(
    "--poll", type=click.FloatRange(0.05, 60), default=2.0, show_default=True, help="Seconds between heartbeat reads."
)
@yes_option
@json_option
@pass_app
def push(
    app: AppContext, version: str | None, clients: tuple[str, ...], all_clients: bool, emergency: str | None,
    resume_uid: str | None, dwell: dt.timedelta | None, poll: float, yes: bool, as_json: bool,
) -> None:  # fmt: skip
    """Push pack VERSION: the canary (one host per client) first, a dwell with gates, then the tier's waves.

    \b
    Gates, from the hosts' heartbeats and alerts: every host reports the new digest within the tier's confirm
    timeout; stays healthy; spends at most the tier's detector budget per log line; bans at most its bound over
    its own 24 h baseline; loses no heartbeat. A failed gate halts the push and reverts every host it assigned.
    Maintenance windows apply unless the tier is 24/7 or --emergency REASON (recorded) is given.

    \b
    Exit codes: 0 every host reports the pack; 1 halted and reverted (or stopped by 'defence revert');
    3 waiting for a client's window or interrupted ('defence push --resume UID').

    \b
    Example:
      sentryctl defence push 2026.12.7 --all --yes
      sentryctl defence push --resume dp-20261207T190000Z-2026.12.7-ab12 --yes
    """
    timing = pushes.Timing(poll_seconds=poll, dwell_seconds=int(dwell.total_seconds()) if dwell is not None else None)
    show = lambda e: show_event(app, e)  # noqa: E731
    if resume_uid:
        if version or clients or all_clients or emergency:
            raise click.UsageError("--resume takes no VERSION, --client, --all or --emergency: the push has them")
        confirm(yes, f"resume push {resume_uid}?", what="resuming a push")
        with interruptible(app) as stop:
            _run(app, as_json, [resume_uid], lambda: pushes.resume(
                app.settings, app.ledger, resume_uid, on_event=show, timing=timing, stop=stop))  # fmt: skip
        return
    if not version:
        raise click.UsageError("give a pack VERSION (or --resume UID)")
    if all_clients == bool(clients):
        raise click.UsageError("give --client NAME (repeatable) or --all, exactly one of them")
    planned = pushes.prepare(
        app.settings, app.ledger, version, clients, all_clients=all_clients, emergency_reason=emergency,
        dwell_seconds=timing.dwell_seconds,
    )  # fmt: skip
    if not as_json:
        for w in planned.plan.waves:
            app.err.print(f"wave {w.index} {w.name}: " + ", ".join(f"{h.client}/{h.host}" for h in w.hosts))
        app.err.print(
            f"dwell after the canary: {planned.dwell_seconds}s" + (" (override)" if planned.dwell_override else "")
        )
    confirm(yes, f"push pack {version} to {len(planned.plan.hosts)} host(s)?", what="pushing a pack")
    box: list[str] = []
    with interruptible(app) as stop:
        _run(app, as_json, box, lambda: pushes.start(
            app.settings, app.ledger, planned, on_event=show, timing=timing, stop=stop, on_created=box.append
        ))  # fmt: skip


@click.command()
@click.option("--client", "-c", "clients", multiple=True, metavar="NAME", help="A client to revert (repeatable).")
@click.option("--all", "all_clients", is_flag=True, help="Every client with a pack assigned.")
@click.option("--wait", "wait_seconds", type=click.FloatRange(0, 3600), default=60, show_default=True,
              help="Seconds to wait for the hosts to report their previous pack (0: do not wait).")  # fmt: skip
@yes_option
@json_option
@pass_app
def revert(
    app: AppContext, clients: tuple[str, ...], all_clients: bool, wait_seconds: float, yes: bool, as_json: bool
) -> None:
    """The kill switch: every host of the scope back to its previous pack at once (no canary, no window).

    Live pushes of those clients are marked reverted (a running push stops at its next check). Then waits, at most
    --wait seconds, for each host's heartbeat to report the pack it went back to, and names the silent ones.
    Recorded in the ledger. Exit 0 when every host confirmed, 1 when some stayed silent.
    """
    if all_clients == bool(clients):
        raise click.UsageError("give --client NAME (repeatable) or --all, exactly one of them")
    confirm(yes, "revert the defence packs?", what="the kill switch")
    result = kill_switch.revert(
        app.ledger, None if all_clients else list(clients), wait_seconds=wait_seconds,
        on_event=lambda e: show_event(app, e),
    )  # fmt: skip
    if as_json:
        app.emit_json(result.to_json())
    else:
        app.out.print(f"reverted {len(result.hosts)} host(s); pushes stopped: {', '.join(result.pushes) or 'none'}")
        for key in result.confirmed:
            app.out.print(f"[green]confirmed[/green] {key}")
        for key in result.silent:
            app.out.print(f"[red]silent[/red] {key} (no heartbeat with its previous pack within {wait_seconds:g}s)")
    if result.silent and wait_seconds > 0:
        raise DefenceError(
            f"{len(result.silent)} host(s) did not confirm the revert", hint="see 'sentryctl fleet status'"
        )


@click.command()
@click.option(
    "--min-clients", type=click.IntRange(2), help="K: distinct clients that banned it (default: defence.yml)."
)
@click.option("--within", metavar="DURATION", callback=_duration, help="T: the time they did it in, e.g. 1h.")
@click.option("--expires", metavar="DURATION", callback=_duration, help="How long a proposal lives, e.g. 7d.")
@click.option("--push", "do_push", is_flag=True, help="Build the collective pack and push it to the opted-in tiers.")
@click.option(
    "--poll", type=click.FloatRange(0.05, 60), default=2.0, show_default=True, help="Seconds between heartbeat reads."
)
@json_option
@pass_app
def proposals(
    app: AppContext, min_clients: int | None, within: dt.timedelta | None, expires: dt.timedelta | None,
    do_push: bool, poll: float, as_json: bool,
) -> None:  # fmt: skip
    """Collective defence: addresses banned at K or more distinct clients within T, proposed as fleet-wide
    blocklist entries with an expiry (each recorded once). Never an address in a client's management network
    or the collector's.

    \b
    With --push: build a collective pack (the latest pack's rules and blocklist plus the proposals, the version
    bumped) and push it, canary first with the gates, to the clients whose tier has collective_defence: true.
    Meant for a timer on the controller, e.g. every 10 minutes:
      sentryctl defence proposals --push --json
    """
    from ..defence.policy import load_policy

    policy = load_policy().collective
    found = collective.propose(
        app.settings, app.ledger,
        min_clients=min_clients or policy.min_clients,
        within=within or dt.timedelta(seconds=policy.within_seconds),
        expires=expires or dt.timedelta(seconds=policy.expires_seconds),
    )  # fmt: skip
    pushed: dict[str, Any] = {}
    if do_push and found.new:
        now = dt.datetime.now(dt.UTC)
        version = collective.build_collective(app.settings, app.ledger, found.active, now)
        targets = collective.opted_in(app.settings, app.ledger)
        pushed = {"version": version, "clients": targets, "push": None}
        if targets:
            planned = pushes.prepare(app.settings, app.ledger, version, targets)
            box: list[str] = []
            try:
                pushed["push"] = pushes.start(
                    app.settings, app.ledger, planned, on_event=lambda e: show_event(app, e),
                    timing=pushes.Timing(poll_seconds=poll), on_created=box.append,
                )  # fmt: skip
            except OrchestratorError as exc:
                pushed.update(push=box[0] if box else None, error=exc.message)
                if as_json:
                    app.emit_json(_proposals_json(found, pushed))
                raise
    if as_json:
        app.emit_json(_proposals_json(found, pushed))
        return
    table = Table("net", "clients", "bans", "expires (UTC)", "pushed in", "new")
    new = {p.id for p in found.new}
    for p in found.active:
        table.add_row(
            p.net,
            ", ".join(p.clients),
            str(p.bans),
            str(p.expires_at)[:19],
            p.pushed_version or "",
            "yes" if p.id in new else "",
        )
    app.out.print(table)
    for ex in found.excluded:
        app.out.print(f"[dim]never proposed {ex.ip}: {ex.why}[/dim]")
    if pushed:
        app.out.print(
            f"collective pack {pushed['version']} pushed to "
            + (", ".join(pushed["clients"]) or "no client (none opted in)")
        )


def _proposals_json(found: collective.Proposals, pushed: dict[str, Any]) -> dict[str, Any]:
    def one(p: Any) -> dict[str, Any]:
        return {**p.__dict__, "clients": list(p.clients)}

    return {
        "new": [one(p) for p in found.new],
        "active": [one(p) for p in found.active],
        "excluded": [e.__dict__ for e in found.excluded],
        "pushed": pushed or None,
    }


@click.command()
@click.argument("uid", required=False)
@json_option
@pass_app
def status(app: AppContext, uid: str | None, as_json: bool) -> None:
    """Recent pushes, or one push host by host (state, wave, when assigned and confirmed, why)."""
    records: list[PushRecord] = []
    if uid:
        found = app.ledger.push(uid)
        if found is None:
            raise DefenceError(f"no push {uid!r}", hint="list them with 'sentryctl defence status'")
        records = [found]
    else:
        records = app.ledger.pushes(limit=20)
    if as_json:
        app.emit_json([{**r.__dict__, "clients": list(r.clients)} for r in records])
        return
    if not uid:
        table = Table("push", "pack", "state", "clients", "emergency", "started")
        for r in records:
            table.add_row(
                r.uid, r.version, r.state, ", ".join(r.clients), r.emergency_reason or "", str(r.created_at)[:19]
            )
        app.out.print(table)
        return
    r = records[0]
    app.out.print(f"[bold]{r.uid}[/bold] pack {r.version} ({r.digest[:12]}) state [bold]{r.state}[/bold]")
    if r.emergency_reason:
        app.out.print(f"emergency: {r.emergency_reason}")
    if r.halt_reason:
        app.out.print(f"[red]halted: {r.halt_reason}[/red]")
    table = Table("host", "wave", "state", "assigned", "confirmed")
    for key, h in sorted(r.hosts.items()):
        table.add_row(key, str(h.get("wave_name") or ""), str(h.get("state")), str(h.get("assigned_at") or "")[:19],
                      str(h.get("confirmed_at") or "")[:19])  # fmt: skip
    app.out.print(table)
