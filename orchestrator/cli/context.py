"""What every command receives: the settings and the output helpers."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console

from ..settings import Settings


@dataclass
class AppContext:
    settings: Settings
    out: Console = field(default_factory=lambda: Console(highlight=False, soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False, soft_wrap=True))

    def stage(self, message: str) -> None:
        """One line per stage of long work, on stderr so ``--json`` output stays clean."""
        self.err.print(f"[bold]-->[/bold] {message}")

    def emit_json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


pass_app = click.make_pass_decorator(AppContext)
