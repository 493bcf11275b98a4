"""Options shared by several commands, defined once."""

from __future__ import annotations

import sys

import click

from ..errors import OrchestratorError

client_option = click.option(
    "--client", "-c", required=True, metavar="NAME", help="Client name (folder under the inventories)."
)
limit_option = click.option(
    "--limit", "-l", metavar="PATTERN", help="Only these hosts (Ansible host pattern, e.g. 'web1,web2')."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
lab_name_option = click.option(
    "--name",
    "lab_name",
    default="lab",
    show_default=True,
    metavar="NAME",
    help="Lab name; several labs can run side by side, each on its own subnet.",
)


def confirm(yes: bool, question: str, *, what: str, hint: str = "pass --yes") -> None:
    """Ask before a destructive step; without a terminal to ask on, refuse unless --yes was given."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise OrchestratorError(f"{what} needs confirmation", hint=hint)
    click.confirm(question, abort=True)
