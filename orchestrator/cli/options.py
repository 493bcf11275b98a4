"""Options shared by several commands, defined once."""

from __future__ import annotations

import sys

import click

from ..errors import OrchestratorError


def complete_clients(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion for client names: the inventory folders (the root's --inventories or its default)."""
    from ..settings import Settings

    root = ctx.find_root()
    settings = Settings.from_env(inventories=root.params.get("inventories"))
    try:
        names = sorted(p.name for p in settings.inventories.iterdir() if (p / "hosts.yml").is_file())
    except OSError:
        return []
    return [n for n in names if n.startswith(incomplete)]


client_option = click.option(
    "--client",
    "-c",
    required=True,
    metavar="NAME",
    shell_complete=complete_clients,
    help="Client name (folder under the inventories).",
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
