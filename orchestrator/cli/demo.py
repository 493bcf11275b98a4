"""``sentryctl demo``: the whole story on the local lab, with live progress."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from .context import AppContext, pass_app
from .options import json_option

if TYPE_CHECKING:
    from ..demo import DemoReport

STYLE = {"info": "", "ok": "green", "warn": "yellow"}
MARK = {"ok": "✓", "warn": "!"}


@click.command()
@click.option("--keep", is_flag=True, help="Leave the lab hosts up at the end, to explore (remove with --down).")
@click.option("--down", "down_only", is_flag=True, help="Only remove the lab a kept demo left up, then exit.")
@click.option(
    "--name",
    "lab_name",
    default="demo",
    show_default=True,
    metavar="NAME",
    help="Name of the demo's lab (its hosts are NAME-1..NAME-4).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="The demo's own state folder (ledger, inventories, releases, evidence). [default: <home>/demo]",
)
@json_option
@pass_app
def demo(app: AppContext, keep: bool, down_only: bool, lab_name: str, workdir: Path | None, as_json: bool) -> None:
    """Tell the whole story on the local lab, in under five minutes (needs root, like 'sentryctl lab').

    \b
    1. bring up 4 lab hosts
    2. onboard two clients: acme (professional, 3 hosts) and nightowl (enterprise, 24/7, 1 host)
    3. pin every host key, 4. preflight, 5. start Sentry's collector on the lab bridge address
    6. provision the protection stack (every agent wired to the collector)
    7. build and sign a hotfix; roll it out canary -> waves with health and smoke gates
    8. roll out a deliberately broken hotfix: the canary gate fails, the hosts roll back by themselves
    9. a feature release: only acme, whose on-site training was signed off, gets it
    10. an attack on one host: its source is banned within seconds, a management address never
    11. audit both clients and write their evidence bundles
    12. the attack's alert in 'fleet alerts'; a host stopped on purpose turns silent in 'fleet status'

    Everything lives in a workspace of its own (default <home>/demo: ledger, inventories, release catalog,
    evidence), never among your real clients; the next demo wipes it. The lab is removed at the end, also
    on failure or Ctrl-C, unless --keep.

    \b
    Example:
      sentryctl demo                  # the whole story, then clean up
      sentryctl demo --keep           # ... and leave the lab up to explore
      sentryctl demo --down           # remove the kept lab
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .. import demo as story  # the whole core: loaded only when the demo runs

    if down_only:
        if not story.down(app.settings, app.stage, workdir):
            click.echo("no demo lab is up; nothing to remove")
        return
    console = app.err if as_json else app.out
    total = len(story.STEPS)
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[now]}"),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=total, now="")

        def show(event: story.DemoEvent) -> None:
            if event.kind == "step":
                progress.update(task, description=f"[{event.index}/{total}] {event.message}", now="")
                progress.console.print(f"\n[bold cyan]{event.index}/{total}[/bold cyan] [bold]{event.message}[/bold]")
            elif event.kind == "status":
                progress.update(task, now=event.message[:70])
            elif event.kind == "done":
                progress.update(task, advance=1, now="")
                progress.console.print(f"    [dim]done in {event.seconds or 0:.1f}s[/dim]")
            else:
                style = STYLE.get(event.kind, "")
                mark = MARK.get(event.kind, "·")
                text = f"[{style}]{mark}[/{style}] " if style else f"{mark} "
                progress.console.print(f"    {text}{escape(event.message)}", highlight=False)

        report = story.run_demo(app.settings, lab_name=lab_name, keep=keep, workdir=workdir, on_progress=show)
    if as_json:
        app.emit_json(report.to_json())
        return
    summary(app, report, keep, story.LAB_HOSTS)


def summary(app: AppContext, report: DemoReport, keep: bool, hosts: int) -> None:
    from rich.table import Table

    console = app.out
    table = Table("step", "seconds", title=f"demo done in {report.total_seconds:.0f}s", title_justify="left")
    for s in report.steps:
        table.add_row(s.title, f"{s.seconds:.1f}")
    console.print(table)
    where = Table("what", "where", title="where everything is", title_justify="left", show_header=False)
    for what, path in report.locations.items():
        where.add_row(what, path)
    console.print(where)
    console.print("explore it:")
    for line in report.explore:
        console.print(f"  {line}", highlight=False, markup=False)
    if keep:
        lab = f"{report.lab}-1..{report.lab}-{hosts}"
        console.print(f"the lab is still up ({lab}); remove it with: sentryctl demo --down", markup=False)
    else:
        console.print("the lab hosts are removed; the files above stay until the next demo", markup=False)
