"""``sentryctl incidents``: list, show, acknowledge and resolve incidents; response-time compliance."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import click
from rich.table import Table

from ..incidents import response as compliance_view
from ..ledger.escalations import PageRecord
from ..ledger.incidents import INCIDENT_STATES, IncidentRecord
from .context import AppContext, pass_app
from .options import json_option

STATE_CHOICES = (*INCIDENT_STATES, "all")


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _when(moment: _dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value / 60:.1f} min"


def page_json(p: PageRecord) -> dict[str, Any]:
    keys = ("step_index", "target", "state", "attempts", "created_at", "next_try_at", "sent_at", "last_error")
    return {k: getattr(p, k) for k in keys}


def incident_json(i: IncidentRecord, now: _dt.datetime, pages: list[PageRecord] | None = None) -> dict[str, Any]:
    return {
        "pages": [page_json(p) for p in pages or []],
        **{k: v for k, v in i.__dict__.items() if k not in ("hosts", "detail")},
        "hosts": list(i.hosts),
        "detail": dict(i.detail),
        "seconds_to_ack": i.seconds_to_ack,
        "seconds_to_resolve": i.seconds_to_resolve,
        "response": compliance_view.verdict(i, now),
    }


@click.group()
def incidents() -> None:
    """Incidents: problems that need a person, with a response target per tier.

    \b
    Example:
      sentryctl incidents list --client acme --state open
      sentryctl incidents ack 12 --by alice
      sentryctl incidents resolve 12 --by alice --note "ban list updated"
    """


@incidents.command("list")
@click.option("--client", "-c", metavar="NAME", help="Only this client's incidents.")
@click.option("--state", type=click.Choice(STATE_CHOICES), default="all", show_default=True)
@click.option("--limit", "-n", type=click.IntRange(1), default=100, show_default=True, help="Newest N incidents.")
@json_option
@pass_app
def list_(app: AppContext, client: str | None, state: str, limit: int, as_json: bool) -> None:
    """Incidents, the newest first. Example: sentryctl incidents list --state open --json"""
    now = _now()
    found = app.ledger.incidents(client, None if state == "all" else [state], limit=limit)
    pages: dict[int, list[PageRecord]] = {}
    for p in app.ledger.incident_pages([i.id for i in found]) if found else []:
        pages.setdefault(p.incident_id, []).append(p)
    if as_json:
        app.emit_json([incident_json(i, now, pages.get(i.id)) for i in found])
        return
    table = Table(
        "id", "client", "state", "severity", "kind", "title", "hosts", "n", "opened (UTC)", "due (UTC)", "pages"
    )
    for i in found:
        mine = pages.get(i.id, [])
        pending = sum(p.state == "pending" for p in mine)
        paged = f"{sum(p.state == 'sent' for p in mine)} sent" + (f", [red]{pending} pending[/red]" if pending else "")
        colour = {"open": "red", "acked": "yellow"}.get(i.state, "green")
        table.add_row(
            str(i.id),
            i.client,
            f"[{colour}]{i.state}[/{colour}]",
            i.severity,
            i.kind,
            i.title,
            ",".join(i.hosts),
            str(i.occurrences),
            _when(i.opened_at),
            _when(i.due_at),
            paged,
        )
    app.out.print(table)


@incidents.command()
@click.argument("incident_id", type=click.IntRange(1), metavar="ID")
@json_option
@pass_app
def show(app: AppContext, incident_id: int, as_json: bool) -> None:
    """One incident and its timeline. Example: sentryctl incidents show 12"""
    incident = app.ledger.incident(incident_id)
    steps = app.ledger.incident_steps(incident_id)
    if as_json:
        body = incident_json(incident, _now(), app.ledger.incident_pages([incident_id]))
        body["timeline"] = [{**s.__dict__, "detail": dict(s.detail)} for s in steps]
        app.emit_json(body)
        return
    i = incident
    app.out.print(f"incident {i.id} of {i.client} ({i.tier}): {i.title}")
    app.out.print(
        f"  {i.state}, {i.severity} {i.kind}, hosts {', '.join(i.hosts) or '-'}, {i.occurrences} occurrence(s)"
    )
    app.out.print(f"  opened {_when(i.opened_at)} UTC by {i.opened_by}, response due {_when(i.due_at)} UTC")
    if i.acked_at:
        app.out.print(f"  acknowledged {_when(i.acked_at)} UTC by {i.acked_by} ({_seconds(i.seconds_to_ack)})")
    if i.resolved_at:
        note = f": {i.resolve_note}" if i.resolve_note else ""
        app.out.print(
            f"  resolved {_when(i.resolved_at)} UTC by {i.resolved_by} ({_seconds(i.seconds_to_resolve)}){note}"
        )
    table = Table("at (UTC)", "step", "by", "detail")
    for s in steps:
        table.add_row(_when(s.at), s.step, s.actor, ", ".join(f"{k}={v}" for k, v in sorted(s.detail.items())))
    app.out.print(table)


@incidents.command()
@click.argument("incident_id", type=click.IntRange(1), metavar="ID")
@click.option("--by", metavar="NAME", help="Who acknowledges. [default: SENTRY_ACTOR or user@host]")
@json_option
@pass_app
def ack(app: AppContext, incident_id: int, by: str | None, as_json: bool) -> None:
    """Acknowledge an open incident: the escalation stops. Example: sentryctl incidents ack 12 --by alice"""
    done = app.ledger.ack_incident(incident_id, by=by, at=_now())
    if as_json:
        app.emit_json(incident_json(done, _now()))
        return
    app.out.print(f"incident {done.id} acknowledged by {done.acked_by} after {_seconds(done.seconds_to_ack)}")


@incidents.command()
@click.argument("incident_id", type=click.IntRange(1), metavar="ID")
@click.option("--by", metavar="NAME", help="Who resolves. [default: SENTRY_ACTOR or user@host]")
@click.option("--note", metavar="TEXT", help="What was done.")
@json_option
@pass_app
def resolve(app: AppContext, incident_id: int, by: str | None, note: str | None, as_json: bool) -> None:
    """Resolve an incident; the next occurrence opens a new one. Example: sentryctl incidents resolve 12 --note fixed"""
    done = app.ledger.resolve_incident(incident_id, by=by, note=note, at=_now())
    if as_json:
        app.emit_json(incident_json(done, _now()))
        return
    app.out.print(f"incident {done.id} resolved by {done.resolved_by} after {_seconds(done.seconds_to_resolve)}")


@incidents.command()
@click.option("--client", "-c", required=True, metavar="NAME", help="Client name.")
@click.option("--month", required=True, metavar="YYYY-MM", help="Month (UTC) the incidents opened in.")
@json_option
@pass_app
def compliance(app: AppContext, client: str, month: str, as_json: bool) -> None:
    """Response-time compliance: incidents answered within target / decided. Example:
    sentryctl incidents compliance --client acme --month 2026-12"""
    try:
        compliance_view.month_bounds(month)
    except Exception as exc:  # a bad month is bad usage: exit 2 with the fix
        raise click.BadParameter(str(exc), param_hint="--month") from None
    result = compliance_view.compliance(app.ledger, client, month)
    if as_json:
        app.emit_json(result.as_dict())
        return
    ratio = "n/a" if result.ratio is None else f"{result.ratio:.0%}"
    app.out.print(
        f"{client} {result.month}: {result.within} of {result.within + result.missed} answered within target ({ratio}),"
        f" {result.pending} pending, {result.total} incident(s); mean to ack {_seconds(result.mean_seconds_to_ack)},"
        f" to resolve {_seconds(result.mean_seconds_to_resolve)}"
    )


@incidents.command()
@json_option
@pass_app
def tick(app: AppContext, as_json: bool) -> None:
    """One pass of the engine the collector runs every few seconds: detect, escalate, send due pages.
    For cron or a check by hand. Example: sentryctl incidents tick --json"""
    from ..incidents.engine import engine_for

    result = engine_for(app.ledger, app.settings, actor=app.ledger.actor).tick()
    if as_json:
        app.emit_json(result.__dict__)
        return
    app.out.print(
        f"opened {result.opened}, merged {result.merged}, escalated {result.escalated},"
        f" pages sent {result.sent}, failed {result.failed}"
    )
