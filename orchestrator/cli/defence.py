"""``sentryctl defence``: signed defence packs (detection rules and blocklists) built, listed, shown and verified."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .. import defence as packs
from .context import AppContext, pass_app
from .defence_push import register_push
from .options import json_option

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def defence() -> None:
    """Defence packs: detection rules and blocklists that reach agents in seconds, without a release.

    A pack is one signed file (release signing key) with new detection rules, a blocklist of networks to ban until
    they expire, or both. It is validated before it is signed: the agent's own rules parser, every pattern timed
    on adversarial lines (catastrophic backtracking is refused, naming the rule), and no blocklist entry may cover
    a client's management network or the collector. Versions are immutable, like releases.

    \b
    Example:
      sentryctl defence build --version 2026.12.7 --rules rules.json --blocklist blocklist.yml
      sentryctl defence list
      sentryctl defence verify 2026.12.7
    """


@defence.command()
@click.option("--version", "version", required=True, metavar="V", help="Pack version, MAJOR.MINOR.PATCH[-pre].")
@click.option("--rules", "rules_file", type=_FILE, metavar="FILE", help="Detection rules (agent rules.json format).")
@click.option("--blocklist", "blocklist_file", type=_FILE, metavar="FILE", help="Networks to ban (YAML or JSON).")
@json_option
@pass_app
def build(app: AppContext, version: str, rules_file: Path | None, blocklist_file: Path | None, as_json: bool) -> None:
    """Validate, sign and record a defence pack (give --rules, --blocklist, or both).

    \b
    A rules FILE is the agent's rules.json format; each pattern must define (?P<ip>...) and
    should be anchored on a literal, e.g.:
      {"version": "2026.12.7",
       "rules": [{"id": "game-bruteforce", "source": "game",
                  "pattern": "LOGIN FAILED user=\\\\S+ ip=(?P<ip>[0-9a-fA-F:.]+)\\\\s*$",
                  "threshold": 5, "window_seconds": 60, "ban_seconds": 600}]}

    \b
    A blocklist FILE is a YAML (or JSON) list; expires is an RFC 3339 time or a duration
    (s, m, h, d, w) from now, at most 90 days; comment is optional:
      - net: 203.0.113.0/24
        expires: 7d
        comment: botnet X
      - net: 2001:db8:dead::/48
        expires: 2026-12-14T00:00:00Z

    \b
    Example:
      sentryctl defence build --version 2026.12.7 --blocklist blocklist.yml
      sentryctl defence build --version 2026.12.8 --rules rules.json --blocklist blocklist.yml --json
    """
    packs.validate_version(version)  # before it is echoed: a newline in it would split the stage line
    app.stage(f"building defence pack {version}")
    built = packs.build_pack_files(
        app.settings, app.ledger, version=version, rules_file=rules_file, blocklist_file=blocklist_file
    )
    if as_json:
        app.emit_json(built.to_json())
        return
    app.out.print(
        f"built defence pack {built.version}: {built.rule_count} rules, {built.blocklist_count} blocklist entries, "
        f"signed by {built.signed_by}",
        markup=False,
    )
    app.out.print(f"  {packs.packs_dir(app.settings.home) / built.version}\n  sha256 {built.digest}", markup=False)


@defence.command("list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List the packs, oldest version first.

    \b
    Example:
      sentryctl defence list --json | jq -r '.[-1].version'
    """
    found = packs.list_packs(app.settings, app.ledger)
    if as_json:
        app.emit_json([p.to_json() for p in found])
        return
    if not found:
        app.out.print("no defence packs yet; build one with 'sentryctl defence build --version 1.0.0 --rules FILE'")
        return
    table = Table("version", "created (UTC)", "rules", "blocklist", "sha256", "signed by")
    for p in found:
        rules = f"{p.rules_version} ({p.rule_count})" if p.rules_version else "-"
        table.add_row(
            p.version,
            p.created_at.strftime("%Y-%m-%d %H:%M"),
            rules,
            str(p.blocklist_count),
            p.digest[:12],
            p.signed_by or "not the current key",
        )
    app.out.print(table)


@defence.command()
@click.argument("version")
@json_option
@pass_app
def show(app: AppContext, version: str, as_json: bool) -> None:
    """Show one pack: its summary, rules and blocklist (use 'verify' to check it).

    \b
    Example:
      sentryctl defence show 2026.12.7
      sentryctl defence show 2026.12.7 --json | jq '.blocklist[].net'
    """
    found = packs.get_pack(app.settings, app.ledger, version)
    if as_json:
        app.emit_json(found.to_json(content=True))
        return
    for key, value in found.to_json().items():
        app.out.print(f"{key + ':':<17}{'-' if value is None else value}", markup=False)
    for rule in (found.rules or {}).get("rules") or []:
        app.out.print(f"rule {rule.get('id')} ({rule.get('source')}): {rule.get('pattern')}", markup=False)
    for entry in found.blocklist:
        note = f"  # {entry.comment}" if entry.comment else ""
        app.out.print(f"block {entry.net} until {entry.to_json()['expires_at']}{note}", markup=False)


@defence.command()
@click.argument("version")
@json_option
@pass_app
def verify(app: AppContext, version: str, as_json: bool) -> None:
    """Check a pack: the catalog's bytes and signature are the ledger's, the digest, and the signature with the
    current release public key.

    Exits 0 with 'verified: ...', or 1 naming what differs (with --json: {"verified": false, "error": ...}).

    \b
    Example:
      sentryctl defence verify 2026.12.7
    """
    try:
        found = packs.verify_pack(app.settings, app.ledger, version)
    except packs.DefenceError as exc:
        if as_json:
            app.emit_json({"verified": False, "pack": version, "error": exc.message, "hint": exc.hint})
        raise
    if as_json:
        app.emit_json({"verified": True, "pack": version, **found.to_json()})
        return
    app.out.print(f"verified: defence pack {found.version}, sha256 {found.digest[:16]}, signed by {found.signed_by}")


register_push(defence)  # push, revert, proposals, status: orchestrator/cli/defence_push.py
