"""``sentryctl exec``: an ad-hoc command on a client's hosts."""

from __future__ import annotations

import shlex

import click

from .. import adhoc, inventory, vault
from ..errors import OrchestratorError
from .context import AppContext, pass_app
from .options import client_option, json_option, limit_option


@click.command("exec", context_settings={"ignore_unknown_options": True})
@client_option
@limit_option
@click.option("--timeout", type=click.FloatRange(1, 3600), default=300, show_default=True, help="Seconds per host.")
@click.option(
    "--no-record-output",
    "no_record_output",
    is_flag=True,
    help="Keep the output out of the ledger (and so out of evidence bundles); exit codes are still recorded.",
)
@json_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_app
def exec_(
    app: AppContext,
    client: str,
    limit: str | None,
    timeout: float,
    no_record_output: bool,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND on the client's hosts in parallel (Fabric, pinned keys); output and exit code per host.

    Every run is recorded in the ledger: who, what, when, where and each host's result with the last 2 KiB
    of its output. The ledger is hash-chained and goes into every evidence bundle: any value of the client's
    vaulted secrets is masked (***) in what is recorded, and --no-record-output records no output at all
    (use it for commands that print secrets sentryctl does not know).

    \b
    Example:
      sentryctl exec --client acme --limit game1 -- systemctl status sentry-agent
    """
    inv = inventory.load(app.settings.inventories, client)
    chosen = inv.select(limit)
    text = command[0] if len(command) == 1 else shlex.join(command)
    app.stage(f"running on {len(chosen)} host(s): {text}")
    known = vault.values(app.settings, inv)  # before any connection: an unreadable vault stops here
    result = adhoc.run_command(
        inv, chosen, text, app.ledger, timeout=timeout, record_output=not no_record_output, secrets=known
    )
    outcomes, run_uid = result.outcomes, result.run_uid
    if as_json:
        app.emit_json({"client": client, "command": text, "run": run_uid, "hosts": [o.to_json() for o in outcomes]})
    else:
        for o in outcomes:
            colour = {"ok": "green", "failed": "red", "unreachable": "red"}[o.status]
            rc = "-" if o.rc is None else str(o.rc)
            app.out.print(f"[bold]{o.host}[/bold] [{colour}]{o.status}[/{colour}] rc={rc} ({o.seconds:.1f}s)")
            for line in o.stdout.rstrip().splitlines() if o.stdout.strip() else []:
                app.out.print(f"  {line}", markup=False)
            for line in o.stderr.rstrip().splitlines() if o.stderr.strip() else []:
                app.out.print(f"  [dim]stderr[/dim] {line}")
            if o.error:
                app.out.print(f"  [red]{o.error}[/red]")
    bad = result.failed
    if bad:
        raise OrchestratorError(f"command failed on {', '.join(bad)}", hint=f"recorded in the ledger as run {run_uid}")
