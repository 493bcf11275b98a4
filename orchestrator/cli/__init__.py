"""The ``sentryctl`` command line: parse, call the core, show the result, map errors to exit codes.

This package is the only place that imports Click. Every core failure is an ``OrchestratorError`` and is
turned into one line and an exit code in :func:`main`, nowhere else.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import sys
import traceback

import click

from .. import __version__
from ..errors import OrchestratorError
from ..settings import Settings
from .context import AppContext
from .groups import register

# Click's completion protocol: the shell sets this variable to ask for a script or for completions.
COMPLETE_VAR = "_SENTRYCTL_COMPLETE"
EXIT_UNEXPECTED = 70  # EX_SOFTWARE: a bug, not the user's fault; the traceback is in the debug log
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--home",
    envvar="SENTRY_HOME",
    type=click.Path(file_okay=False),
    help="State directory: ledger, keys, run artifacts, lab. [env: SENTRY_HOME; default ~/.local/state/sentryctl]",
)
@click.option(
    "--inventories",
    envvar="SENTRY_INVENTORIES",
    type=click.Path(file_okay=False),
    help="Folder holding one inventory folder per client. [env: SENTRY_INVENTORIES; default ./inventories]",
)
@click.option(
    "--db-url",
    help="Ledger database URL, e.g. postgresql+psycopg://user@db/sentry. [env: SENTRY_DB_URL; default SQLite in home]",
)
@click.option("-v", "--verbose", count=True, help="More detail; repeat for debug logging (-vv).")
@click.version_option(__version__, prog_name="sentryctl")
@click.pass_context
def cli(ctx: click.Context, home: str | None, inventories: str | None, db_url: str | None, verbose: int) -> None:
    """Protect clients' hosts: onboard them, ship releases in gated waves, audit them.

    \b
    Onboarding:  client new -> hosts pin -> preflight -> provision -> audit
    Releases:    release build -> rollout plan -> rollout start (hotfix: canary, waves, gates)
    Feature:     training schedule -> training signoff -> rollout start
    Local lab:   lab up --hosts 3 -> lab ping -> lab down

    \b
    Exit codes:
      0    success
      1    an expected failure (the message names the fix), or hosts failed
      2    bad usage
      3    paused or waiting (a rollout stopped by its window or Ctrl-C; 'rollout resume' goes on)
      4    could not audit (a host was unreachable or timed out; the others were audited)
      70   an internal error (traceback in <home>/debug.log)
      130  interrupted

    Shell completion (bash): eval "$(_SENTRYCTL_COMPLETE=bash_source sentryctl)"
    """
    settings = Settings.from_env(home=home, inventories=inventories, verbosity=verbose, db_url=db_url)
    settings.tighten_home()
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.obj = AppContext(settings=settings)
    ctx.call_on_close(ctx.obj.close)


register(cli)


def _write_debug_log(settings: Settings | None, exc: BaseException) -> str | None:
    if settings is None:
        settings = Settings.from_env()
    from ..redact import mask_argv, mask_text

    try:
        settings.ensure_home()
        # 0600 from the first byte: the log holds command lines and tracebacks, and its folder may be shared.
        fd = os.open(settings.debug_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(f"--- {_dt.datetime.now(_dt.UTC).isoformat()} sentryctl {' '.join(mask_argv(sys.argv[1:]))}\n")
            fh.write(mask_text("".join(traceback.format_exception(exc))))
        return str(settings.debug_log)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: the one place where errors become exit codes."""
    ctx: click.Context | None = None
    instruction = os.environ.get(COMPLETE_VAR)
    if instruction:
        # What cli.main() would do first; our own entry point must not skip it, or completion never works.
        from click.shell_completion import shell_complete

        sys.exit(shell_complete(cli, {}, "sentryctl", COMPLETE_VAR, instruction))
    try:
        with cli.make_context("sentryctl", list(sys.argv[1:] if argv is None else argv)) as ctx:
            cli.invoke(ctx)
        sys.exit(0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except OrchestratorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        app = ctx.obj if ctx is not None and isinstance(ctx.obj, AppContext) else None
        where = _write_debug_log(app.settings if app else None, exc)
        detail = f"; traceback in {where}" if where else ""
        from ..redact import mask_text

        click.echo(mask_text(f"internal error: {type(exc).__name__}: {exc}{detail}"), err=True)
        sys.exit(EXIT_UNEXPECTED)
