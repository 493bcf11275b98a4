"""``sentryctl training``: on-site training sessions and sign-offs (the feature track's gate)."""

from __future__ import annotations

import click
from rich.table import Table

from .. import training as core
from .context import AppContext, pass_app
from .options import json_option


@click.group()
def training() -> None:
    """On-site training: a feature release reaches a client only after its training is signed off.

    \b
    Example:
      sentryctl training schedule --client acme --release 2.0.0 --date 2026-12-03 --trainer "Lea Trainer"
      sentryctl training signoff --client acme --release 2.0.0 --trainer "Lea Trainer" \\
          --attendee "Ana Ops" --attendee "Raj SRE"
      sentryctl rollout start 2.0.0 --all      # acme gets it; clients not signed off wait
    """


@training.command()
@click.option("--client", "-c", required=True, metavar="NAME")
@click.option("--release", "version", required=True, metavar="VERSION")
@click.option("--date", required=True, metavar="YYYY-MM-DD", help="Day of the on-site session.")
@click.option("--trainer", required=True, metavar='"NAME"')
@click.option(
    "--backdate", metavar='"REASON"', help="Allow a --date in the past; the reason is recorded in the ledger."
)
@pass_app
def schedule(app: AppContext, client: str, version: str, date: str, trainer: str, backdate: str | None) -> None:
    """Schedule a session; writes the client's release notes and the trainer's packet.

    A date in the past is refused unless --backdate says why.
    """
    _, paths = core.schedule(app.settings, app.ledger, client, version, date=date, trainer=trainer, backdate=backdate)
    app.out.print(f"training for {client} on {version} scheduled for {date} with {trainer}")
    for path in paths:
        app.out.print(f"  wrote {path}")


@training.command()
@click.option("--client", "-c", required=True, metavar="NAME")
@click.option("--release", "version", required=True, metavar="VERSION")
@click.option("--trainer", required=True, metavar='"NAME"')
@click.option("--attendee", "attendees", multiple=True, required=True, metavar='"NAME"', help="Repeatable.")
@click.option("--notes", help="Anything the trainer wants on record.")
@click.option(
    "--unscheduled",
    is_flag=True,
    help="Sign off a session that was never scheduled (recorded as unscheduled in the ledger).",
)
@pass_app
def signoff(
    app: AppContext,
    client: str,
    version: str,
    trainer: str,
    attendees: tuple[str, ...],
    notes: str | None,
    unscheduled: bool,
) -> None:
    """Record that the client's staff was trained on VERSION (or its training module).

    The sign-off opens the feature track's gate, so it completes a scheduled session; one that was never
    scheduled needs --unscheduled.
    """
    core.signoff(
        app.settings,
        app.ledger,
        client,
        version,
        trainer=trainer,
        attendees=attendees,
        notes=notes,
        unscheduled=unscheduled,
    )
    app.out.print(f"training for {client} on {version} signed off by {trainer} ({len(attendees)} attendee(s))")


@training.command("list")
@click.option("--client", "-c", metavar="NAME", help="Only this client.")
@json_option
@pass_app
def list_(app: AppContext, client: str | None, as_json: bool) -> None:
    """Scheduled and signed-off sessions."""
    records = app.ledger.trainings(client)
    if as_json:
        app.emit_json([r.to_json() if hasattr(r, "to_json") else r.__dict__ for r in records])
        return
    table = Table("client", "release", "module", "state", "scheduled", "trainer", "attendees")
    for r in records:
        table.add_row(
            r.client, r.release_version, r.module or "-", r.state, str(r.scheduled_for or "-"), r.trainer,
            ", ".join(r.attendees),
        )  # fmt: skip
    app.out.print(table)
