"""``sentryctl collector``: Sentry's collector (TLS setup, serving, tokens, retention)."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

import click

from .. import inventory
from ..collector import config, tokens
from ..errors import ConfigError
from .context import AppContext, pass_app
from .fleet import duration
from .options import client_option, json_option

if TYPE_CHECKING:
    from ..collector.worker import Worker
    from ..ledger import Ledger


def _listen(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A bad address is bad usage (exit 2), caught before anything is written."""
    if value is not None:
        try:
            config.parse_listen(value)
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@click.group()
def collector() -> None:
    """Sentry's collector: agents report alerts and heartbeats to it over TLS with their client's token.

    \b
      sentryctl collector init --listen 10.0.0.1:8443      # TLS key (0600) and self-signed certificate
      sentryctl collector serve                            # runs until Ctrl-C / SIGTERM
      sentryctl collector token revoke --client acme       # acme's agents get 401 from now on
      sentryctl collector prune --older-than 30d
    """


@collector.command()
@click.option("--listen", default=config.DEFAULT_LISTEN, show_default=True, metavar="ADDR:PORT", callback=_listen)
@click.option("--url", metavar="URL", help="URL agents use. [default: https://LISTEN]")
@click.option("--san", "sans", multiple=True, metavar="NAME|IP", help="Extra certificate name (repeatable).")
@click.option("--force", is_flag=True, help="Remake the key and certificate (every agent's pin changes).")
@json_option
@pass_app
def init(app: AppContext, listen: str, url: str | None, sans: tuple[str, ...], force: bool, as_json: bool) -> None:
    """Make the collector's TLS key and self-signed certificate under HOME/collector/."""
    directory = config.init(app.settings, listen=listen, url=url, sans=sans, force=force)
    loaded = config.load(app.settings)
    pin = config.cert_sha256(loaded.cert_file)
    if as_json:
        app.emit_json({"directory": str(directory), "url": loaded.url, "cert_sha256": pin})
        return
    app.out.print(f"collector initialized in {directory}")
    app.out.print(f"url {loaded.url}")
    app.out.print(f"certificate sha256 {pin}")


@collector.command()
@click.option("--listen", metavar="ADDR:PORT", callback=_listen, help="Override the address from collector init.")
@pass_app
def serve(app: AppContext, listen: str | None) -> None:
    """Serve agents over TLS (never without): POST /v1/ingest, GET /healthz, GET /metrics (operator token)."""
    from ..collector import server

    settings = config.load(app.settings, listen=listen)
    app.stage(f"collector listening on https://{settings.listen_host}:{settings.listen_port}")
    server.serve(settings, workers=lambda ledger: collector_workers(app, settings, ledger))


def collector_workers(app: AppContext, settings: config.CollectorSettings, ledger: Ledger) -> list[Worker]:
    """The incident engine (detect, escalate, page) and the dead-man heartbeat, as collector.json sets them."""
    from functools import partial

    from ..collector import deadman
    from ..collector.worker import Loop
    from ..incidents.engine import engine_for

    workers: list[Worker] = []
    if settings.incidents_tick_seconds > 0:
        engine = engine_for(ledger, app.settings)
        workers.append(Loop("incidents", engine.tick, settings.incidents_tick_seconds))
    if settings.deadman_url:
        workers.append(Loop("deadman", partial(deadman.beat, settings.deadman_url), settings.deadman_interval_seconds))
    return workers


@collector.group()
def token() -> None:
    """Clients' collector tokens (the collector_token secret; the ledger keeps only its hash)."""


@token.command("ensure")
@client_option
@pass_app
def token_ensure(app: AppContext, client: str) -> None:
    """Create the client's token if it has none, and register its hash."""
    inv = inventory.load(app.settings.inventories, client)
    changed = tokens.ensure_collector_token(app.settings, inv, app.ledger)
    app.out.print(f"collector token of {client}: {'registered' if changed else 'already registered'}")


@token.command("revoke")
@client_option
@pass_app
def token_revoke(app: AppContext, client: str) -> None:
    """Revoke the client's token: its agents get 401 until a new one is set and provisioned."""
    count = app.ledger.revoke_collector_tokens(client)
    if count == 0:
        raise ConfigError(f"client {client} has no live collector token", hint="nothing to revoke")
    app.out.print(f"revoked {count} collector token(s) of {client}")


@collector.command()
@click.option("--older-than", "older_than", required=True, metavar="DURATION", callback=duration, help="e.g. 30d, 12h.")
@json_option
@pass_app
def prune(app: AppContext, older_than: _dt.timedelta, as_json: bool) -> None:
    """Delete alerts and heartbeats received longer ago than DURATION."""
    before = _dt.datetime.now(_dt.UTC) - older_than
    deleted = app.ledger.prune_telemetry(before)
    if as_json:
        app.emit_json({"before": before.isoformat(), "deleted": deleted})
        return
    app.out.print(f"deleted {deleted['alert']} alert(s), {deleted['heartbeat']} heartbeat(s) before {before:%F %T}Z")
