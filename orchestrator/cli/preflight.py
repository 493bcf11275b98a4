"""``sentryctl preflight``: check every host of a client before work starts."""

from __future__ import annotations

import click
from rich.table import Table

from .. import inventory
from ..errors import OrchestratorError
from ..preflight import PreflightReport, Thresholds
from ..preflight import preflight as run_preflight
from .context import AppContext, pass_app
from .options import client_option, json_option, limit_option


def preflight_table(report: PreflightReport) -> Table:
    table = Table("host", "result", "checks", title=f"preflight {report.client}")
    for h in report.hosts:
        if h.error:
            table.add_row(h.host, "[red]error[/red]", h.error)
            continue
        bad = [f"{c.id}: {c.detail}" for c in h.checks if not c.ok]
        table.add_row(h.host, "[green]ok[/green]" if h.ok else "[red]failed[/red]", "; ".join(bad) or "all passed")
    return table


@click.command()
@client_option
@limit_option
@click.option("--timeout", type=click.FloatRange(1, 300), default=10, show_default=True, help="Seconds per step.")
@click.option("--min-free-mb", type=click.IntRange(0), default=1024, show_default=True, help="Free space on /.")
@click.option("--max-clock-skew", type=click.FloatRange(0), default=5.0, show_default=True, help="Seconds.")
@json_option
@pass_app
def preflight(
    app: AppContext,
    client: str,
    limit: str | None,
    timeout: float,
    min_free_mb: int,
    max_clock_skew: float,
    as_json: bool,
) -> None:
    """Check every host in parallel: pinned key, Python 3.8+, root or sudo, disk, clock, Debian 12, systemd.

    Exits 1 if any host fails a check or cannot be reached within the timeout.
    """
    inv = inventory.load(app.settings.inventories, client)
    chosen = inv.select(limit)
    app.stage(f"preflight of {len(chosen)} host(s) of {client}")
    limits = Thresholds(min_free_mb=min_free_mb, max_clock_skew=max_clock_skew, timeout=timeout)
    report = run_preflight(inv, chosen, limits)
    if as_json:
        app.emit_json(report.to_json())
    else:
        app.out.print(preflight_table(report))
    if not report.ok:
        raise OrchestratorError(f"preflight failed on {', '.join(report.failed)}")
