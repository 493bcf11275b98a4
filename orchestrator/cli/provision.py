"""``sentryctl provision``: install the protection stack on a client's hosts."""

from __future__ import annotations

import click

from ..errors import OrchestratorError
from ..provision import STACK_TAGS
from ..provision import provision as run_provision
from ..runner import RunRequest
from .context import AppContext, pass_app
from .options import client_option, dry_run_option, json_option, limit_option
from .preflight import preflight_table
from .progress import RunProgress, result_table


@click.command()
@client_option
@limit_option
@dry_run_option
@click.option(
    "--tags",
    "-t",
    multiple=True,
    type=click.Choice(STACK_TAGS),
    help="Only these parts of the stack (repeatable).",
)
@click.option(
    "--release",
    metavar="VERSION",
    help="Converge every chosen host with this catalog release (no downgrade, its minimum previous version holds).",
)
@click.option(
    "--task-timeout",
    type=click.IntRange(1, 86400),
    default=RunRequest.task_timeout,
    show_default=True,
    help="Seconds one task may take on one host; past it that host fails and the others go on.",
)
@click.option(
    "--run-timeout",
    type=click.IntRange(1, 86400),
    default=RunRequest.run_timeout,
    show_default=True,
    help="Seconds the whole run may take; past it the run is stopped and unfinished hosts fail.",
)
@json_option
@pass_app
def provision(
    app: AppContext,
    client: str,
    limit: str | None,
    dry_run: bool,
    tags: tuple[str, ...],
    release: str | None,
    task_timeout: int,
    run_timeout: int,
    as_json: bool,
) -> None:
    """Install (or re-converge) the protection stack on a client's hosts, as the client's tier says.

    Runs playbooks/site.yml with live per-host progress; a second run on converged hosts changes nothing.
    --dry-run runs in check + diff mode: it shows what would change and changes nothing.

    Each host keeps the agent release the ledger says it runs (taken from the signed catalog and verified before
    any SSH connection); a host with no release yet gets the agent of this tree. --release VERSION moves the hosts
    to a catalog release instead, with the rules of 'rollout start' (no downgrade, minimum previous version).

    \b
    Example:
      sentryctl provision --client lab
      sentryctl provision --client acme --limit game1 --dry-run
      sentryctl provision --client acme --release 1.4.2
    """
    verb = "checking" if dry_run else "provisioning"
    app.stage(f"preflight of {client}, then {verb} it")
    progress = RunProgress(app.err, f"{verb} {client}")
    with progress.running():
        outcome = run_provision(
            app.settings,
            client,
            app.ledger,
            limit=limit,
            dry_run=dry_run,
            tags=tags,
            release=release,
            on_event=progress.on_event,
            cancel=progress.cancel,
            task_timeout=task_timeout,
            run_timeout=run_timeout,
        )
    result = outcome.run
    if result is None:
        if as_json:
            app.emit_json(
                {"client": client, "preflight": outcome.preflight.to_json(), "run": None, "releases": outcome.releases}
            )
        else:
            app.out.print(preflight_table(outcome.preflight))
        raise OrchestratorError(
            f"preflight failed on {', '.join(outcome.preflight.failed)}; nothing was changed",
            hint=f"fix the hosts, then check with 'sentryctl preflight --client {client}'",
        )
    if as_json:
        app.emit_json(
            {
                "client": client,
                "preflight": outcome.preflight.to_json(),
                "run": result.to_json(),
                "runs": [r.to_json() for r in outcome.runs],
                "releases": outcome.releases,
                "failed": dict(outcome.reasons or {}),
            }
        )
    else:
        app.out.print(result_table(result))
        if dry_run:
            app.out.print(f"dry run: {result.changed_total} change(s) would be made; nothing was changed")
        else:
            shown = ", ".join(f"{v} on {', '.join(h for h, x in outcome.releases.items() if x == v)}"
                              for v in sorted(set(outcome.releases.values())))  # fmt: skip
            app.out.print(f"recorded in the ledger as run {result.run_id} (agent release {shown})")
        for host, why in sorted((outcome.reasons or {}).items()):
            app.out.print(f"[red]{host}[/red]: {why}")
    if not outcome.ok:
        bad = sorted({*result.by_status("failed"), *result.by_status("unreachable"), *outcome.preflight.failed})
        raise OrchestratorError(
            f"{verb} {client} failed on {', '.join(bad) or 'the run'} (status {result.status})",
            hint=f"see {result.artifact_dir / 'stdout'}"
            + (f"; check the others with 'sentryctl preflight --client {client}'" if outcome.preflight.failed else ""),
        )
