"""``sentryctl ledger``: read and verify the durable record."""

from __future__ import annotations

import click
from rich.table import Table

from ..errors import OrchestratorError
from .context import AppContext, pass_app
from .options import json_option


@click.group()
def ledger() -> None:
    """The ledger: clients, hosts, releases, runs and an append-only, hash-chained event log.

    SQLite under the state directory unless --db-url / SENTRY_DB_URL points at PostgreSQL.
    """


@ledger.command()
@pass_app
def init(app: AppContext) -> None:
    """Create the ledger at --db-url / SENTRY_DB_URL (or bring an existing one to this version's schema).

    Only the default ledger under the state directory is created on first use; any other URL must be
    initialised here first, so a mistyped URL fails instead of starting a new, empty ledger.
    """
    from ..ledger import Ledger

    app.settings.ensure_home()
    with Ledger.open(app.settings.db_url, app.settings.home, create=True) as opened:
        app.out.print(f"ledger ready at {opened.url}")


@ledger.command()
@click.option("--client", "-c", metavar="NAME", help="Only events of this client.")
@click.option("--limit", "-n", type=click.IntRange(1), default=50, show_default=True, help="Newest N events.")
@json_option
@pass_app
def log(app: AppContext, client: str | None, limit: int, as_json: bool) -> None:
    """Show the newest events, oldest first."""
    events = app.ledger.events(client=client, limit=limit)
    if as_json:
        app.emit_json([{**e.__dict__, "payload": dict(e.payload)} for e in events])
        return
    table = Table("seq", "at (UTC)", "actor", "kind", "client", "subject", "details")
    for e in events:
        details = ", ".join(f"{k}={v}" for k, v in sorted(e.payload.items()) if not isinstance(v, (dict, list)))
        table.add_row(str(e.seq), e.at[:19], e.actor, e.kind, e.client or "", e.subject or "", details[:80])
    app.out.print(table)


@ledger.command()
@click.option("--client", "-c", metavar="NAME", help="Only runs of this client.")
@click.option("--kind", help="Only runs of this kind (provision, check, exec, ...).")
@click.option("--limit", "-n", type=click.IntRange(1), default=20, show_default=True)
@json_option
@pass_app
def runs(app: AppContext, client: str | None, kind: str | None, limit: int, as_json: bool) -> None:
    """Show recorded runs with their per-host results, newest first."""
    found = app.ledger.runs(client=client, kind=kind, limit=limit)
    if as_json:
        app.emit_json([{**r.__dict__, "hosts": [h.__dict__ for h in r.hosts]} for r in found])
        return
    table = Table("run", "kind", "client", "actor", "started (UTC)", "status", "hosts")
    for r in found:
        hosts = ", ".join(f"{h.host}:{h.status}" for h in r.hosts)
        table.add_row(
            r.uid, r.kind, r.client or "", r.actor, r.started_at.strftime("%Y-%m-%d %H:%M:%S"), r.status, hosts
        )
    app.out.print(table)


@ledger.command()
@json_option
@pass_app
def verify(app: AppContext, as_json: bool) -> None:
    """Recompute the hash chain; name every edited, deleted or inserted event. Exits 1 on any problem."""
    report = app.ledger.verify()
    if as_json:
        app.emit_json(report.__dict__)
    elif report.ok:
        app.out.print(f"ledger ok: {report.checked} event(s), head {report.head_seq} {report.head_hash}")
    else:
        for problem in report.problems:
            app.err.print(f"[red]{problem}[/red]")
    if not report.ok:
        raise OrchestratorError(
            f"ledger verification failed: {len(report.problems)} problem(s), first at event {report.first_broken}"
        )
