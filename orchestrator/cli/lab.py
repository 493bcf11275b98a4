"""``sentryctl lab``: throwaway local hosts that behave like client hosts."""

from __future__ import annotations

import os

import click

from ..lab.manager import Lab
from .context import AppContext, pass_app
from .options import json_option, lab_name_option


@click.group()
def lab() -> None:
    """Local lab hosts: real systemd in systemd-nspawn containers, one network namespace each.

    The lab is the default target of the demo and the tests. It needs root and the Debian packages
    debootstrap, systemd-container, iproute2, openssh-client and dpkg-dev. The first 'lab up' builds a
    base image (about a minute) and caches it.

    \b
    Example:
      sentryctl lab up --hosts 3      # hosts lab-1..lab-3, inventory in ./inventories/lab
      sentryctl lab ping              # Ansible reaches every host with pinned keys
      sentryctl lab ssh lab-1         # a shell on a host
      sentryctl lab down              # remove every trace
    """


@lab.command()
@click.option("--hosts", "-n", "count", type=click.IntRange(1, 60), default=3, show_default=True, help="Hosts wanted.")
@click.option(
    "--subnet",
    metavar="CIDR",
    help="Private IPv4 /24 (or smaller prefix) for this lab. [default: a free one]",
)
@lab_name_option
@pass_app
def up(app: AppContext, count: int, subnet: str | None, lab_name: str) -> None:
    """Start lab hosts (idempotent: adds hosts up to --hosts, restarts stopped ones).

    Writes a client-style inventory (hosts.yml, known_hosts with the keys the lab generated, client.yml,
    group_vars/all.yml) to <inventories>/<name>/ so every tool keeps strict host key checking.
    """
    state = Lab(app.settings, lab_name).up(count, app.stage, subnet=subnet)
    click.echo(f"inventory: {state.inventory_dir}/hosts.yml")


@lab.command()
@lab_name_option
@pass_app
def down(app: AppContext, lab_name: str) -> None:
    """Remove the lab: hosts, mounts, namespaces, bridge, cgroups, inventory. Safe to run twice."""
    if not Lab(app.settings, lab_name).down(app.stage):
        click.echo(f"lab {lab_name} is not up; nothing to remove")


@lab.command()
@lab_name_option
@json_option
@pass_app
def status(app: AppContext, lab_name: str, as_json: bool) -> None:
    """Show each lab host: address, whether it runs, whether sshd answers."""
    the_lab = Lab(app.settings, lab_name)
    rows = the_lab.status()
    if as_json:
        app.emit_json({"lab": lab_name, "hosts": [r.to_json() for r in rows]})
        return
    from rich.table import Table

    table = Table("host", "address", "running", "ssh", title=f"lab {lab_name}")
    for r in rows:
        table.add_row(r.name, r.address, "yes" if r.running else "[red]no[/red]", "yes" if r.ssh else "[red]no[/red]")
    app.out.print(table)


@lab.command()
@lab_name_option
@json_option
@pass_app
def ping(app: AppContext, lab_name: str, as_json: bool) -> None:
    """Run the ping playbook on every lab host through the Ansible engine (pinned keys, live progress).

    The run is recorded in the ledger like every other (ledger runs --client <lab name>)."""
    from .. import inventory, paths
    from ..clients import ensure_client
    from ..errors import OrchestratorError
    from ..runner import RunRequest
    from ..runs import run_recorded
    from .progress import RunProgress, result_table

    inv = inventory.load(app.settings.inventories, Lab(app.settings, lab_name).inventory_dir.name)
    request = RunRequest(playbook=paths.playbook("ping.yml"), inventory=inv, label=f"ping-{lab_name}")
    progress = RunProgress(app.err, f"ping {len(inv.hosts)} host(s)")
    ensure_client(app.ledger, inv)
    with progress.running():
        result, _ = run_recorded(
            app.settings, app.ledger, request, kind="ping", client=inv.client,
            summary={"hosts": [h.name for h in inv.hosts]}, on_event=progress.on_event, cancel=progress.cancel,
        )  # fmt: skip
    if as_json:
        app.emit_json(result.to_json())
    else:
        app.out.print(result_table(result))
    if not result.ok:
        bad = result.by_status("failed") + result.by_status("unreachable")
        raise OrchestratorError(
            f"ping failed on {', '.join(bad) or 'the run'} (status {result.status})",
            hint=f"see {result.artifact_dir / 'stdout'}",
        )


@lab.command()
@click.argument("host")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@lab_name_option
@pass_app
def ssh(app: AppContext, host: str, command: tuple[str, ...], lab_name: str) -> None:
    """Open a shell on HOST (or run COMMAND there), with the lab's pinned host key."""
    the_lab = Lab(app.settings, lab_name)
    argv = the_lab.ssh_argv(the_lab.host(host), interactive=not command)
    os.execvp(argv[0], [*argv, *command])
