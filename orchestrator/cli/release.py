"""``sentryctl release``: the signing key, and building, listing, showing and verifying releases."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .. import paths, releases
from ..releases import signing
from ..track_names import TRACK_NAMES
from .context import AppContext, pass_app
from .options import json_option

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def release() -> None:
    """Releases: signed, checksummed bundles of the Sentry agent and its detection rules, kept in a catalog.

    A hotfix goes out remotely in gated waves; a feature release reaches a client only after on-site training.
    Versions are immutable: a change ships as a new version. Rollouts verify a release before they connect.

    \b
    Example:
      sentryctl release keygen                       # once per state directory
      sentryctl release build --version 1.4.2 --track hotfix --notes notes.md
      sentryctl release build --version 1.5.0 --track feature --requires-training ids-tuning-201
      sentryctl release list
      sentryctl release verify 1.4.2
    """


@release.command()
@click.option("--force", is_flag=True, help="Replace an existing key; releases signed with it stop verifying.")
@pass_app
def keygen(app: AppContext, force: bool) -> None:
    """Create the ed25519 key that signs releases (private key mode 0600, public key PEM).

    \b
    Example:
      sentryctl release keygen
      openssl pkeyutl -verify -pubin -inkey ~/.local/state/sentryctl/keys/release-signing.pub -rawin \\
          -in sentry-agent-1.4.2.tar.gz -sigfile sentry-agent-1.4.2.tar.gz.sig   # anyone can check a bundle
    """
    home = app.settings.ensure_home()
    private, public = signing.keygen(home, force=force, ledger=app.ledger)
    app.out.print(f"release signing key {signing.public_fingerprint(home)}")
    app.out.print(f"  private {private} (keep it secret; back it up)")
    app.out.print(f"  public  {public} (share it: it verifies releases)")


@release.command()
@click.option("--version", "version", required=True, metavar="V", help="Release version, MAJOR.MINOR.PATCH[-pre].")
@click.option("--track", required=True, type=click.Choice(TRACK_NAMES), help="hotfix or feature.")
@click.option("--notes", "notes_file", type=_FILE, metavar="FILE", help="Release notes (UTF-8 text).")
@click.option("--requires-training", metavar="MODULE", help="Training module clients need first (feature only).")
@click.option("--min-previous", metavar="V", help="Oldest version hosts may upgrade from.")
@click.option("--rules", "rules_file", type=_FILE, metavar="FILE", help="Detection rules replacing rules/rules.json.")
@json_option
@pass_app
def build(
    app: AppContext,
    version: str,
    track: str,
    notes_file: Path | None,
    requires_training: str | None,
    min_previous: str | None,
    rules_file: Path | None,
    as_json: bool,
) -> None:
    """Build the agent of this tree into a signed release in the catalog.

    \b
    Example:
      sentryctl release build --version 1.4.2 --track hotfix --notes notes.md --min-previous 1.4.0
      sentryctl release build --version 1.4.3 --track hotfix --rules new-rules.json
    """
    source = paths.project_root() / "agent"
    releases.validate_version(version)  # before it is echoed: a newline in it would split the stage line
    app.stage(f"building release {version} ({track}) from {source}")
    built = releases.build_release(
        source,
        app.settings.ensure_home(),
        version=version,
        track=track,
        notes=releases.load_notes(notes_file) if notes_file else None,
        requires_training=requires_training,
        min_previous_version=min_previous,
        rules_file=rules_file,
        ledger=app.ledger,
    )
    if as_json:
        app.emit_json(built.to_json())
        return
    app.out.print(f"built release {built.version} ({built.track}), signed by {built.signed_by}")
    app.out.print(f"  {built.bundle}\n  sha256 {built.sha256}")


@release.command("list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """List the catalog, oldest version first.

    \b
    Example:
      sentryctl release list --json | jq -r '.[] | select(.track == "hotfix") | .version'
    """
    found = releases.list_releases(app.settings.home)
    if as_json:
        app.emit_json([r.to_json(manifest=False) for r in found])
        return
    if not found:
        app.out.print("no releases yet; build one with 'sentryctl release build --version 1.0.0 --track hotfix'")
        return
    table = Table("version", "track", "created (UTC)", "training", "sha256")
    for r in found:
        table.add_row(r.version, r.track, r.created or "-", r.requires_training or "-", r.sha256[:12])
    app.out.print(table)


@release.command()
@click.argument("version")
@json_option
@pass_app
def show(app: AppContext, version: str, as_json: bool) -> None:
    """Show one release as the catalog records it (use 'verify' to check it).

    \b
    Example:
      sentryctl release show 1.4.2
    """
    found = releases.get_release(app.settings.home, version)
    if as_json:
        app.emit_json(found.to_json())
        return
    for key, value in found.to_json(manifest=False).items():
        if key != "notes":
            app.out.print(f"{key + ':':<22}{'-' if value is None else value}", markup=False)
    app.out.print(f"notes:\n{found.notes}" if found.notes else "notes:                -", markup=False)


@release.command()
@click.argument("release_ref", metavar="FILE_OR_VERSION")
@json_option
@pass_app
def verify(app: AppContext, release_ref: str, as_json: bool) -> None:
    """Check a release offline: its signature, every file against its manifest, and its catalog record.

    Exits 0 with 'verified: ...', or 1 with the one thing that is wrong (with --json: {"verified": false,
    "error": ...} on stdout as well).

    \b
    Example:
      sentryctl release verify 1.4.2
      sentryctl release verify ./sentry-agent-1.4.2.tar.gz    # its .sig must sit beside it
    """
    try:
        found = releases.verify_release(release_ref, app.settings.home)
    except releases.ReleaseError as exc:
        if as_json:
            app.emit_json({"verified": False, "release": release_ref, "error": exc.message, "hint": exc.hint})
        raise
    files = len(found.manifest["files"])
    if as_json:
        app.emit_json({"verified": True, "release": release_ref, **found.to_json(manifest=False)})
        return
    app.out.print(
        f"verified: {found.bundle.name} ({found.track} {found.version}), {files} files, "
        f"sha256 {found.sha256[:16]}, signed by {found.signed_by}"
    )
