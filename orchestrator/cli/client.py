"""``sentryctl client``: onboard clients from templates, list, show and remove them."""

from __future__ import annotations

import sys

import click

from .. import clients, inventory, vault
from .context import AppContext, pass_app
from .options import confirm, json_option, yes_option


@click.group()
def client() -> None:
    """Client inventories: one folder per client under the inventories folder.

    \b
    Onboarding, step by step:
      sentryctl client new acme --tier professional \\
          --host game1=203.0.113.10 --host game2=203.0.113.11:2222 \\
          --mgmt-network 198.51.100.0/24 --game-port 7777 --game-port 27015/udp \\
          --window "Mon-Fri 02:00-05:00 Europe/Madrid" --contact "Ana Ops <ana@acme.example>"
      sentryctl hosts pin --client acme        # confirm each host key fingerprint
      sentryctl preflight --client acme
      sentryctl provision --client acme
    """


@client.command("new")
@click.argument("name")
@click.option("--tier", required=True, help="Service tier: essentials, professional, enterprise.")
@click.option("--host", "hosts", multiple=True, metavar="NAME=ADDRESS[:PORT]", help="A host (repeatable).")
@click.option("--user", default="root", show_default=True, help="SSH user on the hosts (root or passwordless sudo).")
@click.option("--key", "key_file", metavar="FILE", help="Private SSH key for the hosts. [default: agent/ssh defaults]")
@click.option("--game-port", "game_ports", multiple=True, metavar="PORT[/tcp|/udp]", help="Game port to rate-limit.")
@click.option(
    "--mgmt-network", "mgmt_networks", multiple=True, metavar="CIDR", help="Network Sentry manages from (repeatable)."
)
@click.option(
    "--window",
    "window_text",
    default="always",
    show_default=True,
    help='Maintenance window, e.g. "Mon-Fri 02:00-05:00 Europe/Madrid".',
)
@click.option("--contact", "contacts", multiple=True, metavar='"NAME <MAIL>"', help="Client contact (repeatable).")
@click.option("--force", is_flag=True, help="Rewrite an existing client's inventory; unchanged hosts keep their pins.")
@json_option
@pass_app
def new(
    app: AppContext,
    name: str,
    tier: str,
    hosts: tuple[str, ...],
    user: str,
    key_file: str | None,
    game_ports: tuple[str, ...],
    mgmt_networks: tuple[str, ...],
    window_text: str,
    contacts: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Scaffold inventories/NAME/ from templates; everything is validated before anything is written."""
    spec = clients.build_spec(
        name=name,
        tier=tier,
        hosts=hosts,
        mgmt_networks=mgmt_networks,
        window_text=window_text,
        user=user,
        key_file=key_file,
        game_ports=game_ports,
        contacts=contacts,
    )
    inv = clients.create(app.settings, spec, app.ledger, force=force)
    if as_json:
        app.emit_json(_client_json(inv))
        return
    app.out.print(f"client {name} ({tier}) written to {inv.path} with {len(inv.hosts)} host(s)")
    app.out.print(f"next: sentryctl hosts pin --client {name}")


def _client_json(inv: inventory.Inventory) -> dict[str, object]:
    return {
        "client": inv.client,
        "path": str(inv.path),
        "tier": inv.tier,
        "meta": dict(inv.meta),
        "pinned": inv.known_hosts.exists(),
        "hosts": [{"name": h.name, "address": h.address, "port": h.port, "user": h.user} for h in inv.hosts],
    }


@client.command("list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List the clients found under the inventories folder."""
    found = clients.list_clients(app.settings)
    if as_json:
        app.emit_json([_client_json(i) for i in found])
        return
    if not found:
        app.out.print(f"no clients under {app.settings.inventories}")
        return
    from rich.table import Table

    table = Table("client", "tier", "hosts", "window", "keys pinned")
    for inv in found:
        pins = "yes" if inv.known_hosts.exists() else "[yellow]no[/yellow]"
        table.add_row(inv.client, inv.tier or "?", str(len(inv.hosts)), str(inv.meta.get("window", "")), pins)
    app.out.print(table)


@client.command()
@click.argument("name")
@json_option
@pass_app
def show(app: AppContext, name: str, as_json: bool) -> None:
    """Show a client: tier, window, contacts, hosts and what the ledger says each host runs."""
    inv = inventory.load(app.settings.inventories, name)
    releases = {
        r.host: {"release_version": r.release_version, "stack_version": r.stack_version, "track": r.release_track}
        for r in app.ledger.host_releases(name)
    }
    data = _client_json(inv)
    data["releases"] = releases
    if as_json:
        app.emit_json(data)
        return
    from rich.table import Table

    app.out.print(f"[bold]{inv.client}[/bold]  tier {inv.tier}  window {inv.meta.get('window', '?')}")
    for contact in inv.meta.get("contacts") or []:
        app.out.print(f"  contact: {contact}")
    table = Table("host", "address", "port", "user", "release", "stack")
    for h in inv.hosts:
        rel = releases.get(h.name, {})
        release, stack = rel.get("release_version", "-"), rel.get("stack_version", "-")
        table.add_row(h.name, h.address, str(h.port), h.user, release, stack)
    app.out.print(table)


@client.command()
@click.argument("name")
@yes_option
@pass_app
def remove(app: AppContext, name: str, yes: bool) -> None:
    """Remove a client's inventory folder. The ledger keeps its history."""
    inv = inventory.load(app.settings.inventories, name)
    confirm(yes, f"remove client {name} and its inventory {inv.path}?", what=f"removing client {name}")
    path = clients.remove(app.settings, name, app.ledger)
    app.out.print(f"removed {path}; the ledger keeps {name}'s history")


@client.group()
def secret() -> None:
    """Per-client secrets, kept encrypted (ansible-vault) in the client's inventory.

    Values are read from standard input or a hidden prompt, never from the command line, and never shown.
    """


@secret.command("set")
@click.argument("name", type=click.Choice(sorted(vault.KNOWN)))
@click.option("--client", "-c", "client_name", required=True, metavar="NAME", help="Client name.")
@pass_app
def secret_set(app: AppContext, name: str, client_name: str) -> None:
    """Set secret NAME for a client (value from stdin, or a hidden prompt on a terminal)."""
    inv = inventory.load(app.settings.inventories, client_name)
    if sys.stdin.isatty():
        value = click.prompt(f"{name} for {client_name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.readline().rstrip("\n")
    vault.set_secret(app.settings, inv, name, value, app.ledger)
    app.out.print(f"{name} set for {client_name} (encrypted in {vault.vault_file(inv)})")


@secret.command("list")
@click.option("--client", "-c", "client_name", required=True, metavar="NAME", help="Client name.")
@json_option
@pass_app
def secret_list(app: AppContext, client_name: str, as_json: bool) -> None:
    """List which secrets are set for a client (names only)."""
    inv = inventory.load(app.settings.inventories, client_name)
    found = vault.names(app.settings, inv)
    if as_json:
        app.emit_json(found)
    else:
        app.out.print("\n".join(found) if found else f"no secrets set for {client_name}")


@client.command("portal-token")
@click.argument("name")
@click.option("--label", metavar="TEXT", help="Who or what the new token is for (shown by --list).")
@click.option("--revoke", is_flag=True, help="Revoke the client's live portal tokens (or only --id).")
@click.option("--id", "token_id", type=int, metavar="ID", help="With --revoke: only this token (see --list).")
@click.option("--list", "list_tokens", is_flag=True, help="List the client's portal tokens (ids, no secrets).")
@json_option
@pass_app
def portal_token(
    app: AppContext, name: str, label: str | None, revoke: bool, token_id: int | None, list_tokens: bool, as_json: bool
) -> None:
    """Make a read-only customer portal token for client NAME, and print it once (only its hash is kept).

    The token opens the collector's portal (https://<collector>/portal) on this client's figures only.
    Making and revoking tokens are events in the ledger's chain.

    \b
    Example:
      sentryctl client portal-token acme --label "Ana Ops"
      sentryctl client portal-token acme --list
      sentryctl client portal-token acme --revoke --id 3
    """
    if revoke and list_tokens:
        raise click.UsageError("--revoke and --list do not go together")
    if token_id is not None and not revoke:
        raise click.UsageError("--id goes with --revoke")
    if list_tokens:
        rows = app.ledger.portal_tokens(name)
        if as_json:
            app.emit_json([r.__dict__ for r in rows])
            return
        for r in rows:
            state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "live"
            app.out.print(f"{r.id}\t{r.sha256_prefix}\t{r.created_at:%Y-%m-%d %H:%M}\t{state}\t{r.label or ''}")
        if not rows:
            app.out.print(f"no portal tokens for {name}")
        return
    if revoke:
        count = app.ledger.revoke_portal_tokens(name, token_id)
        if as_json:
            app.emit_json({"client": name, "revoked": count})
        else:
            app.out.print(f"{count} portal token(s) of {name} revoked")
        return
    from ..collector.portal_auth import new_portal_token

    token, record = new_portal_token(app.ledger, name, label=label)
    if as_json:
        app.emit_json({"client": name, "id": record.id, "token": token})
        return
    app.err.print(f"portal token {record.id} for {name} (shown once; only its hash is kept):", markup=False)
    app.out.print(token, markup=False, highlight=False)
