"""What every command receives: the settings and the output helpers."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from ..settings import Settings

if TYPE_CHECKING:
    from ..ledger import Ledger


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    # Off a terminal Rich assumes 80 columns and truncates cells: a cut fingerprint is worse than a long line.
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "200"))
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


@dataclass
class AppContext:
    settings: Settings
    out: Console = field(default_factory=_console)
    err: Console = field(default_factory=lambda: _console(stderr=True))
    _ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        """Opened on first use, so commands that never record anything never touch the database."""
        if self._ledger is None:
            from ..ledger import Ledger

            self.settings.ensure_home()
            # Only the default ledger under the home starts itself; a URL someone typed must already hold one
            # ('sentryctl ledger init' creates it), so a typo never starts a new, empty ledger.
            self._ledger = Ledger.open(self.settings.db_url, self.settings.home, create=self.settings.db_url is None)
        return self._ledger

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def stage(self, message: str) -> None:
        """One line per stage of long work, on stderr so ``--json`` output stays clean."""
        self.err.print(f"[bold]-->[/bold] {message}")

    def emit_json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


pass_app = click.make_pass_decorator(AppContext)
