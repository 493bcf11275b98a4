"""``sentryctl report``: a client's signed security report for a period; ``report verify`` checks one."""

from __future__ import annotations

from pathlib import Path

import click

from .audit import verify
from .context import AppContext
from .options import json_option


@click.group(invoke_without_command=True)
@click.option("--client", "-c", metavar="NAME", help="Client the report is about.")
@click.option("--period", "-p", metavar="PERIOD", help="A month (2026-11) or days (2026-11-03..2026-11-09), UTC.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Folder to create for the report (default: <state dir>/reports/rp-<time>-<client>-<period>).",
)
@json_option
@click.pass_context
def report(ctx: click.Context, client: str | None, period: str | None, out_dir: Path | None, as_json: bool) -> None:
    """Write a client's security report: report.html (charts drawn in it, readable offline), figures.json, one
    CSV per figure, and MANIFEST.json + MANIFEST.sig signed with Sentry's key, like an audit evidence bundle.

    The figures name their inputs (rows counted, time range, the ledger chain's head) so they can be recomputed.
    A client without telemetry gets a report that says so. A malformed or future period exits 2.

    \b
    Example:
      sentryctl report --client acme --period 2026-11 --out ./acme-2026-11
      sentryctl report --client acme --period 2026-11-03..2026-11-09 --json | jq .summary
      sentryctl report verify ./acme-2026-11
    """
    if ctx.invoked_subcommand is not None:
        if client or period:
            raise click.UsageError(
                f"--client and --period go with 'sentryctl report', not 'report {ctx.invoked_subcommand}'"
            )
        return
    if not client or not period:
        raise click.UsageError("missing option '--client' or '--period' (or the subcommand: verify)")
    from ..analytics import parse_period
    from ..reports import write_report

    app: AppContext = ctx.find_object(AppContext)  # type: ignore[assignment]
    parsed = parse_period(period)
    app.stage(f"report of {client} for {parsed.label}")
    outcome = write_report(app.settings, app.ledger, client, parsed, out_dir)
    doc = outcome.figures.to_json()
    if as_json:
        app.emit_json({**doc, "report": str(outcome.path), "manifest_sha256": outcome.manifest_sha256})
        return
    summary = doc["summary"]
    if outcome.figures.empty:
        app.out.print(f"{client} has no telemetry in {parsed.label}: the report says so.", markup=False)
    app.out.print(
        f"{summary['alerts']} alert(s), {summary['bans_issued']} ban(s),"
        f" {summary['packets_dropped']:,} packet(s) dropped, {summary['open_drift']} host(s) with open drift",
        markup=False,
    )
    app.out.print(f"report: {outcome.path}", markup=False)
    app.out.print(f"manifest sha256 {outcome.manifest_sha256}", markup=False)


report.add_command(verify, "verify")
