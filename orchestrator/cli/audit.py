"""``sentryctl audit``: verify hosts against the ledger, write signed evidence bundles, verify bundles."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from ..audit import AuditOutcome, check_catalog, run_audit, verify_bundle
from ..audit.engine import COMMAND_TIMEOUT
from ..audit.errors import EXIT_NOT_AUDITED
from ..releases import signing
from .context import AppContext, pass_app
from .options import json_option, limit_option

STYLE = {"compliant": "green", "drift": "yellow", "error": "red"}


@click.group(invoke_without_command=True)
@click.option("--client", "-c", metavar="NAME", help="Client to audit (folder under the inventories).")
@limit_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Where to write the evidence bundle (default: <state dir>/audits).",
)
@click.option(
    "--check",
    "check_ids",
    multiple=True,
    metavar="ID",
    help="Only this check (repeatable); see 'sentryctl audit checks'.",
)
@click.option(
    "--waivers",
    "waivers_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Waiver file (default: inventories/<client>/waivers.yml when it exists).",
)
@click.option(
    "--no-converge-check",
    is_flag=True,
    help="Skip the check-mode run of the site playbook (testinfra checks only; faster).",
)
@click.option("--auditor", metavar='"NAME"', help="Who audits, for the report and the ledger (default: the actor).")
@click.option(
    "--command-timeout",
    type=click.FloatRange(1, 3600),
    default=COMMAND_TIMEOUT,
    show_default=True,
    help="Seconds one check command may take on a host; past it the host is reported as not audited.",
)
@json_option
@click.pass_context
def audit(
    ctx: click.Context,
    client: str | None,
    limit: str | None,
    out_dir: Path | None,
    check_ids: tuple[str, ...],
    waivers_file: Path | None,
    no_converge_check: bool,
    auditor: str | None,
    command_timeout: float,
    as_json: bool,
) -> None:
    """Verify that every host of a client is in the state the ledger says, and write a signed evidence bundle.

    Runs the audit's testinfra checks over SSH (pinned keys, connection reuse, all hosts in parallel), then the
    site playbook in check + diff mode to show what provisioning would change. The bundle holds report.html,
    report.json, junit.xml, the inventory snapshot, the ledger excerpt and a signed MANIFEST.json; the audit is
    recorded in the ledger with the manifest's hash.

    \b
    Exit codes:
      0  every host compliant (waived checks allowed)
      1  drift: at least one check failed on a reachable host
      4  could not audit: a host was unreachable or timed out, or the audit could not start
         (bad waiver file, no signing key); the other hosts are still audited and reported
      2  usage error

    \b
    Waivers (inventories/<client>/waivers.yml or --waivers FILE), checked before any host is contacted:
      waivers:
        - {check: agent.health, host: game2, approved_by: Ada Auditor, expires: 2026-12-31,
           justification: "vendor maintenance, ticket OPS-1234"}

    \b
    Example:
      sentryctl audit --client acme --out /srv/evidence
      sentryctl audit --client acme --limit game2 --check agent.health --no-converge-check
      sentryctl audit verify /srv/evidence/au-20261123T101500Z-acme-1a2b
    """
    if ctx.invoked_subcommand is not None:
        if client:
            raise click.UsageError(f"--client goes with 'sentryctl audit', not with 'audit {ctx.invoked_subcommand}'")
        return
    if not client:
        raise click.UsageError("missing option '--client' (or a subcommand: checks, verify, list)")
    app: AppContext = ctx.find_object(AppContext)  # type: ignore[assignment]
    app.stage(f"audit of {client}")
    with app.err.status(f"auditing {client}") as status:

        def progress(message: str) -> None:
            app.err.print(f"    {message}", markup=False, highlight=False)
            status.update(f"auditing {client}: {message}")

        outcome = run_audit(
            app.settings,
            client,
            app.ledger,
            limit=limit,
            out_dir=out_dir,
            check_ids=check_ids,
            waivers_file=waivers_file,
            converge_check=not no_converge_check,
            auditor=auditor,
            on_progress=progress,
            command_timeout=command_timeout,
        )
    if as_json:
        from ..audit.report import report_json

        app.emit_json({**report_json(outcome), "bundle": str(outcome.bundle), "bundle_sha256": outcome.bundle_sha256})
    else:
        _print_summary(app, outcome)
    ctx.exit(outcome.exit_code)


def _print_summary(app: AppContext, outcome: AuditOutcome) -> None:
    table = Table(title=f"audit of {outcome.client}", title_justify="left")
    for column in ("host", "result", "checks", "findings"):
        table.add_column(column)
    for name, host in sorted(outcome.hosts.items()):
        counted = f"{sum(c.status == 'pass' for c in host.checks)} passed"
        waived = sum(c.status == "waived" for c in host.checks)
        counted += f", {waived} waived" if waived else ""
        findings = host.error or "\n".join(f"{c.id}: expected {c.expected}; found {c.found}" for c in host.failed)
        table.add_row(name, f"[{STYLE[host.status]}]{host.status}[/]", counted, findings or "-")
    app.out.print(table)
    for note in outcome.notes:
        app.out.print(f"note: {note}", markup=False)
    app.out.print(f"result: [{STYLE[outcome.status]}]{outcome.status}[/]")
    app.out.print(f"evidence bundle: {outcome.bundle}", markup=False)
    app.out.print(f"  report: {outcome.bundle / 'report.html'}", markup=False)
    app.out.print(f"  manifest sha256 {outcome.bundle_sha256}, recorded in the ledger as {outcome.uid}", markup=False)


@audit.command()
@json_option
@pass_app
def checks(app: AppContext, as_json: bool) -> None:
    """List every check: its stable id (for --check and waivers), when it applies, and the control it verifies."""
    catalog = check_catalog()
    if as_json:
        app.emit_json([{"id": i, "applies_with": c, "description": d} for i, c, d in catalog])
        return
    table = Table()
    for column in ("id", "applies with", "control"):
        table.add_column(column)
    for check_id, component, description in catalog:
        table.add_row(check_id, component, description)
    app.out.print(table)


@audit.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--key",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PUBLIC_KEY",
    help="Sentry's public key (default: <state dir>/keys/release-signing.pub).",
)
@json_option
@pass_app
def verify(app: AppContext, bundle: Path, key: Path | None, as_json: bool) -> None:
    """Check an evidence bundle: the signature over MANIFEST.json, then every file against it.

    Names each file that was altered, removed or added. Exit 0 when intact, 1 otherwise. With --json the
    verdict is printed as one object (also when the signature is missing or wrong), and the exit code is the same.

    \b
    Example:
      sentryctl audit verify ~/.local/state/sentryctl/audits/au-20261123T101500Z-acme-1a2b
      sentryctl audit verify ./evidence/au-* --json | jq .ok
    """
    from ..audit.errors import BundleError

    try:
        result = verify_bundle(bundle, key or signing.public_key_path(app.settings.home))
    except BundleError as exc:
        if as_json:
            app.emit_json({"bundle": str(bundle), "ok": False, "signature_ok": False, "error": str(exc)})
        raise
    if as_json:
        app.emit_json(
            {
                "bundle": str(bundle),
                "ok": result.ok,
                "signature_ok": True,
                "signed_by": result.signed_by,
                "manifest_sha256": result.manifest_sha256,
                "files": result.files,
                "altered": result.altered,
                "missing": result.missing,
                "added": result.added,
            }
        )
    if not result.ok:
        if not as_json:
            for problem in result.problems():
                app.err.print(f"  {problem}", markup=False)
        raise BundleError(f"{bundle} does not match its signed manifest: {len(result.problems())} problem(s)")
    if not as_json:
        app.out.print(
            f"{bundle}: intact, {result.files} file(s) match the manifest signed by {result.signed_by}", markup=False
        )
        app.out.print(f"manifest sha256 {result.manifest_sha256}", markup=False)


@audit.command("list")
@click.option("--client", "-c", metavar="NAME", help="Only this client.")
@json_option
@pass_app
def list_(app: AppContext, client: str | None, as_json: bool) -> None:
    """Audits recorded in the ledger, newest first: who, when, result, bundle and its hash."""
    records = app.ledger.audits(client)
    if as_json:
        app.emit_json([r.__dict__ for r in records])
        return
    table = Table()
    for column in ("audit", "client", "auditor", "finished", "result", "bundle sha256"):
        table.add_column(column)
    for r in records:
        table.add_row(
            r.uid, r.client, r.auditor, r.finished_at.strftime("%Y-%m-%d %H:%M"), r.result, r.bundle_sha256[:16]
        )
    app.out.print(table)


__all__ = ["EXIT_NOT_AUDITED", "audit"]
