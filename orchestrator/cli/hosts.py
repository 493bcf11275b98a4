"""``sentryctl hosts``: pin and inspect the host keys every SSH client checks against."""

from __future__ import annotations

import click

from .. import inventory, pins, remote
from ..errors import OrchestratorError
from .context import AppContext, pass_app
from .options import client_option, confirm, json_option, limit_option, yes_option


@click.group()
def hosts() -> None:
    """Host keys: pinned once, checked strictly by every tool (paramiko, Fabric, Ansible, testinfra)."""


@hosts.command()
@client_option
@limit_option
@yes_option
@click.option("--timeout", type=click.FloatRange(1, 120), default=10, show_default=True, help="Seconds per host.")
@pass_app
def pin(app: AppContext, client: str, limit: str | None, yes: bool, timeout: float) -> None:
    """Fetch each host's key, show its fingerprint and, once confirmed, write inventories/CLIENT/known_hosts.

    Compare the fingerprints with what the client's admins read on the hosts (ssh-keygen -lf
    /etc/ssh/ssh_host_ed25519_key.pub). A key that differs from the pinned one is shown as CHANGED: re-pin only
    when you know why it changed.
    """
    inv = inventory.load(app.settings.inventories, client)
    chosen = inv.select(limit)
    app.stage(f"fetching host keys of {len(chosen)} host(s)")
    result = pins.scan(inv, chosen, timeout)
    from rich.table import Table

    table = Table("host", "address", "key", "fingerprint", "compared with the pin")
    for row in result.rows:
        if row.key is None:
            table.add_row(row.host, row.address, "-", f"[red]{row.error}[/red]", "-")
            continue
        state = {"new": "new", "same": "same"}.get(row.state, f"[red]CHANGED, was {row.pinned_fingerprint}[/]")
        table.add_row(row.host, row.address, row.key.key_type, row.key.fingerprint, state)
    app.out.print(table)
    if result.errors:
        raise OrchestratorError(
            f"could not fetch {len(result.errors)} host key(s); nothing was pinned", hint=result.errors[0].error
        )
    warning = f" {len(result.changed)} key(s) CHANGED." if result.changed else ""
    confirm(
        yes,
        f"Pin these {len(result.rows)} key(s)?{warning}",
        what="pinning",
        hint="check the fingerprints, then pass --yes",
    )
    count = pins.apply(inv, result, app.ledger)
    app.out.print(f"pinned {count} key(s) in {inv.known_hosts}")


@hosts.command("keys")
@client_option
@json_option
@pass_app
def keys_(app: AppContext, client: str, as_json: bool) -> None:
    """Show the pinned fingerprint of every host of a client."""
    inv = inventory.load(app.settings.inventories, client)
    pins = remote.pinned(inv)
    rows = [
        {"host": h.name, "address": h.known_hosts_name, "fingerprint": remote.pinned_fingerprint(pins, h)}
        for h in inv.hosts
    ]
    if as_json:
        app.emit_json(rows)
        return
    for row in rows:
        app.out.print(f"{row['host']:<20} {row['address']:<24} {row['fingerprint'] or '[yellow]not pinned[/yellow]'}")
