"""Commands whose capability is planned but not built yet: they exist so ``--help`` shows the whole tree.

Each says so in one line and exits 1; nothing else happens. An entry leaves this table when its
capability lands as a real command module.
"""

from __future__ import annotations

import click

from ..errors import NotAvailable

# name -> (one-line help, what it will do)
PLANNED: dict[str, tuple[str, str]] = {}


def _planned_command(name: str, short: str, capability: str) -> click.Command:
    def callback(args: tuple[str, ...]) -> None:
        raise NotAvailable(f"'sentryctl {name}' is not available yet: {capability} is still being built")

    return click.Command(
        name,
        callback=callback,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        help=f"{short}\n\n(Planned: {capability} is not available yet.)",
        short_help=f"{short} (planned)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


def planned_commands(exclude: set[str]) -> list[click.Command]:
    return [_planned_command(n, s, c) for n, (s, c) in PLANNED.items() if n not in exclude]
