"""``sentryctl rollout``: plan and run staged rollouts with gates and automatic rollback."""

from __future__ import annotations

import dataclasses
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import click
from rich.table import Table

from ..errors import OrchestratorError
from ..rollout import service
from ..rollout.execute import RolloutEvent
from ..rollout.plan import RolloutPlan
from .context import AppContext, pass_app
from .options import confirm, json_option, yes_option

clients_option = click.option(
    "--client", "-c", "clients", multiple=True, metavar="NAME", help="A client to roll out to (repeatable)."
)
all_option = click.option("--all", "all_clients", is_flag=True, help="Every client under the inventories folder.")
emergency_option = click.option(
    "--emergency",
    metavar="REASON",
    help="Ignore maintenance windows (recorded in the ledger with the reason). For hotfixes that cannot wait.",
)


@click.group()
def rollout() -> None:
    """Staged rollouts of a release: canary first, then waves, with gates between them.

    \b
    Hotfix track: window -> canary -> health + smoke gates -> failure budget -> next wave ...
      a failed gate halts the rollout and rolls the touched hosts back automatically.
    Feature track: the same, but only clients whose on-site training is signed off get it.

    \b
    Example:
      sentryctl rollout plan 1.4.2 --all          # who gets it, in which wave; who waits and why
      sentryctl rollout start 1.4.2 --all --yes
      sentryctl rollout status                    # recent rollouts; 'status ID' for one
    """


def _require_choice(clients: tuple[str, ...], all_clients: bool) -> None:
    """Which clients is a usage question: exit 2, like every other bad combination of options."""
    if all_clients and clients:
        raise click.UsageError("give --client or --all, not both")
    if not all_clients and not clients:
        raise click.UsageError("no clients chosen: pass --client NAME (repeatable) or --all")


def plan_tables(app: AppContext, p: RolloutPlan) -> None:
    table = Table("wave", "hosts", title=f"rollout plan: {p.release.version} ({p.track_name} track)")
    for w in p.waves:
        table.add_row(f"{w.index}: {w.name}", ", ".join(f"{h.client}/{h.host}" for h in w.hosts))
    app.out.print(table)
    app.out.print(
        f"gates: {', '.join(p.gates)}; soak {p.soak_seconds}s between waves; "
        f"health timeout {p.health_timeout_seconds}s; canary failures halt at once"
    )
    if p.emergency_reason:
        app.out.print(f"[yellow]emergency: {p.emergency_reason} (maintenance windows ignored)[/yellow]")
    for wait in p.waiting:
        until = f" until {wait.until}" if wait.until else ""
        app.out.print(f"[yellow]waiting[/yellow] {wait.client}: {wait.reason}{until} ({wait.detail})")
    for s in p.skipped:
        app.out.print(f"[dim]skipped {s.client}/{s.host}: {s.reason}[/dim]")


@rollout.command("plan")
@click.argument("version")
@clients_option
@all_option
@emergency_option
@json_option
@pass_app
def plan_(
    app: AppContext, version: str, clients: tuple[str, ...], all_clients: bool, emergency: str | None, as_json: bool
) -> None:
    """Print the plan for VERSION and change nothing: waves, hosts, gates, windows, who waits for training."""
    _require_choice(clients, all_clients)
    _, p, _ = service.make_plan(
        app.settings, app.ledger, version, clients, all_clients=all_clients, emergency_reason=emergency
    )
    if as_json:
        app.emit_json(p.to_json())
    else:
        plan_tables(app, p)


def show_event(app: AppContext, event: RolloutEvent) -> None:
    where = "/".join(x for x in (event.client, event.host) if x)
    colour = "green" if event.ok else "red"
    prefix = f"[{colour}]{where}[/{colour}] " if where else ""
    app.err.print(f"[bold]-->[/bold] {prefix}{event.message}")


@contextmanager
def interruptible(app: AppContext) -> Iterator[threading.Event]:
    stop = threading.Event()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        app.err.print("[yellow]stopping after the current step; the rollout can be resumed[/yellow]")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def rollout_json(app: AppContext, uid: str | None, error: OrchestratorError | None) -> dict[str, object]:
    """The rollout id, its state and each host's result (with why a host failed), for scripts."""
    record = app.ledger.rollout(uid) if uid else None
    return {
        "rollout": uid,
        "state": record.state if record is not None else None,
        "ok": error is None,
        "exit_code": 0 if error is None else error.exit_code,
        "error": None if error is None else error.message,
        "hosts": [
            {
                "client": h.client,
                "host": h.host,
                "wave": h.wave,
                "status": h.status,
                "target_version": h.target_version,
                "previous_version": h.previous_version,
                "why": h.detail.get("why"),
            }
            for h in (record.hosts if record is not None else ())
        ],
    }


def run_and_report(app: AppContext, as_json: bool, uid_box: list[str], action: Callable[[], str]) -> str:
    """Run a rollout action; with --json print its outcome whatever happened, then let the error through."""
    try:
        uid = action()
    except OrchestratorError as exc:
        if as_json:
            app.emit_json(rollout_json(app, uid_box[0] if uid_box else None, exc))
        raise
    if as_json:
        app.emit_json(rollout_json(app, uid, None))
    return uid


@rollout.command()
@click.argument("version")
@clients_option
@all_option
@emergency_option
@yes_option
@json_option
@pass_app
def start(
    app: AppContext,
    version: str,
    clients: tuple[str, ...],
    all_clients: bool,
    emergency: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Verify VERSION's signature, plan, and execute that plan wave by wave with gates.

    The plan shown is the plan that runs: if the ledger moved before it starts, it refuses. A client with nothing
    to do is reported and left out; a client outside its maintenance window stays in the rollout and waits.

    \b
    Exit codes: 0 every host has the release; 1 halted and rolled back, or completed with failures (the hosts
    named stay pending: 'rollout resume ID' once they answer); 3 waiting for a client's window ('rollout resume').
    """
    _require_choice(clients, all_clients)
    planned = service.prepare(
        app.settings, app.ledger, version, clients, all_clients=all_clients, emergency_reason=emergency
    )
    if not as_json:
        plan_tables(app, planned.plan)
    confirm(yes, f"start rolling out {version} to {len(planned.plan.hosts)} host(s)?", what="starting a rollout")
    box: list[str] = []
    with interruptible(app) as stop:
        uid = run_and_report(
            app,
            as_json,
            box,
            lambda: service.execute(
                app.settings, app.ledger, planned, on_event=lambda e: show_event(app, e), stop=stop,
                on_created=box.append,
            ),
        )  # fmt: skip
    if not as_json:
        app.out.print(f"rollout {uid} completed")


@rollout.command()
@click.argument("uid")
@yes_option
@json_option
@pass_app
def resume(app: AppContext, uid: str, yes: bool, as_json: bool) -> None:
    """Carry a rollout on: after an interruption, for hosts kept pending, or for clients whose window opened.

    Every host is re-checked, not trusted from the bookkeeping. Exit codes as for 'rollout start'.
    """
    confirm(yes, f"resume rollout {uid}?", what="resuming a rollout")
    with interruptible(app) as stop:
        run_and_report(
            app,
            as_json,
            [uid],
            lambda: service.resume(app.settings, app.ledger, uid, on_event=lambda e: show_event(app, e), stop=stop),
        )
    if not as_json:
        app.out.print(f"rollout {uid} completed")


@rollout.command("continue")
@yes_option
@pass_app
def continue_(app: AppContext, yes: bool) -> None:
    """Resume every rollout that waits for a maintenance window (run it from a timer, e.g. every 15 minutes).

    A client whose window is still closed keeps waiting. Exit 0 when nothing waits any more, 3 when some client
    still waits, 1 when a resumed rollout failed.
    """
    confirm(yes, "resume every rollout waiting for a window?", what="continuing rollouts")
    waiting = [r.uid for r in app.ledger.rollouts(limit=200) if r.state == "waiting_window"]
    worst: OrchestratorError | None = None
    for uid in reversed(waiting):
        app.err.print(f"[bold]-->[/bold] resuming {uid}")
        try:
            service.resume(app.settings, app.ledger, uid, on_event=lambda e: show_event(app, e))
            app.out.print(f"rollout {uid} completed")
        except OrchestratorError as exc:
            app.out.print(f"rollout {uid}: {exc.message}")
            if worst is None or (exc.exit_code == 1 and worst.exit_code != 1):
                worst = exc
    if not waiting:
        app.out.print("no rollout waits for a window")
    if worst is not None:
        raise worst


@rollout.command()
@click.argument("uid")
@yes_option
@pass_app
def abort(app: AppContext, uid: str, yes: bool) -> None:
    """Mark a rollout aborted and release its locks (a running executor stops before its next wave)."""
    confirm(yes, f"abort rollout {uid}?", what="aborting a rollout")
    service.abort(app.ledger, uid)
    app.out.print(f"rollout {uid} aborted")


@rollout.command()
@click.argument("uid")
@yes_option
@pass_app
def rollback(app: AppContext, uid: str, yes: bool) -> None:
    """Roll back every host rollout UID switched, to the release it ran before (recorded as a linked rollout)."""
    confirm(yes, f"roll back the hosts of rollout {uid}?", what="a rollback")
    child = service.rollback(app.settings, app.ledger, uid, on_event=lambda e: show_event(app, e))
    app.out.print(f"rollback {child} of {uid} done; hosts healthy on their previous release")


@rollout.command()
@click.argument("uid", required=False)
@json_option
@pass_app
def status(app: AppContext, uid: str | None, as_json: bool) -> None:
    """Recent rollouts, or one rollout host by host."""
    records = [app.ledger.rollout(uid)] if uid else app.ledger.rollouts(limit=20)
    if uid and records[0] is None:
        raise OrchestratorError(f"no rollout {uid!r}", hint="list them with 'sentryctl rollout status'")
    if as_json:
        app.emit_json([dataclasses.asdict(r) for r in records if r is not None])
        return
    if not uid:
        table = Table("rollout", "release", "track", "state", "clients", "started")
        for r in records:
            if r is not None:
                table.add_row(r.uid, r.release_version, r.track, r.state, ", ".join(r.clients), str(r.created_at)[:19])
        app.out.print(table)
        return
    r = records[0]
    assert r is not None
    app.out.print(f"[bold]{r.uid}[/bold] {r.release_version} ({r.track}) state [bold]{r.state}[/bold]")
    if r.parent_uid:
        app.out.print(f"rollback of {r.parent_uid}")
    if r.detail:
        app.out.print(f"detail: {dict(r.detail)}")
    table = Table("wave", "client", "host", "status", "previous", "detail")
    for h in sorted(r.hosts, key=lambda h: (h.wave, h.client, h.host)):
        detail = str(h.detail.get("why") or h.detail.get("detail") or h.detail.get("reason") or "")
        table.add_row(str(h.wave), h.client, h.host, h.status, h.previous_version or "-", detail[:100])
    app.out.print(table)
