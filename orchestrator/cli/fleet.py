"""``sentryctl fleet``: what the agents report, from the collector's records in the ledger."""

from __future__ import annotations

import datetime as _dt

import click
from rich.table import Table

from .. import fleet as fleet_view
from ..errors import ConfigError
from .context import AppContext, pass_app
from .options import client_option, json_option


def duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> _dt.timedelta | None:
    """A bad duration is bad usage (exit 2, the fix in the one error line), not a failure of the command."""
    if value is None:
        return None
    try:
        return fleet_view.parse_duration(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def fleet() -> None:
    """The fleet as its agents report it: online, silent (no heartbeat for 3 intervals) or never seen."""


@fleet.command()
@click.option("--client", "-c", metavar="NAME", help="Only this client's hosts.")
@json_option
@pass_app
def status(app: AppContext, client: str | None, as_json: bool) -> None:
    """Per host: last heartbeat and its age, agent version, rules digest, the active defence pack (version and
    short digest, as the last heartbeat reports it) and whether it matches the pack assigned ("yes"/"no"), spool
    depth, alerts in the last hour."""
    rows = fleet_view.status(app.ledger, client, inventories=app.settings.inventories)
    if as_json:
        app.emit_json([r.__dict__ for r in rows])
        return
    table = Table(
        "client", "host", "state", "last heartbeat (UTC)", "age", "version", "rules", "pack", "assigned", "spool",
        "alerts 1h",
    )  # fmt: skip
    for r in rows:
        colour = {"online": "green", "silent": "red"}.get(r.state, "yellow")
        table.add_row(
            r.client,
            r.host,
            f"[{colour}]{r.state}[/{colour}]",
            r.last_heartbeat.strftime("%Y-%m-%d %H:%M:%S") if r.last_heartbeat else "",
            f"{r.age_seconds:.0f}s" if r.age_seconds is not None else "",
            r.version or "",
            (r.rules_digest or "")[:12],
            _pack(r.pack_version, r.pack_digest, r.pack_status),
            "" if not r.pack_matches else ("[green]yes[/green]" if r.pack_matches == "yes" else "[red]no[/red]"),
            "" if r.spool_records is None else str(r.spool_records),
            str(r.alerts_last_hour),
        )
    app.out.print(table)


def _pack(version: str | None, digest: str | None, state: str | None) -> str:
    if version is None:
        return "" if state in (None, "none") else str(state)
    text = f"{version} {(digest or '')[:12]}"
    return text if state in (None, "active") else f"{text} ({state})"


@fleet.command()
@client_option
@click.option("--host", metavar="NAME", help="Only this host.")
@click.option(
    "--since", default="1h", show_default=True, metavar="DURATION", callback=duration, help="e.g. 15m, 1h, 7d."
)
@click.option("--limit", "-n", type=click.IntRange(1), default=1000, show_default=True, help="Newest N alerts.")
@json_option
@pass_app
def alerts(app: AppContext, client: str, host: str | None, since: _dt.timedelta, limit: int, as_json: bool) -> None:
    """The alerts as the agents reported them, oldest first (by the collector's receive time)."""
    found = fleet_view.alerts(app.ledger, client, host=host, since=since, limit=limit)
    if as_json:
        app.emit_json([{**a.__dict__, "raw": dict(a.raw)} for a in found])
        return
    table = Table("received (UTC)", "host time (UTC)", "host", "rule", "ip", "count", "action", "severity")
    for a in found:
        table.add_row(
            a.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            a.host_time.strftime("%Y-%m-%d %H:%M:%S"),
            a.host,
            a.rule or "",
            a.ip or "",
            "" if a.count is None else str(a.count),
            a.action or "",
            a.severity,
        )
    app.out.print(table)
