"""The demo's workspace: a folder of its own (ledger, inventories, release catalog, lab), so the demo never
touches real clients or the real ledger; wiped when the next demo starts, and only if it is marked as one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..lab.manager import Lab
from ..settings import Settings
from .records import DemoError

MARKER = ".sentry-demo"  # marks a folder as a demo workspace, so only such a folder is ever wiped


def workspace_settings(settings: Settings, workdir: Path | None = None) -> Settings:
    """The demo's own state: ledger (always SQLite), inventories, releases and lab under the workspace."""
    root = (workdir or settings.home / "demo").expanduser().resolve()
    return Settings(home=root, inventories=root / "inventories", verbosity=settings.verbosity, db_url=None)


def demo_labs(ws: Settings) -> list[str]:
    return sorted(d.name for d in ws.lab_dir.iterdir() if d.is_dir()) if ws.lab_dir.is_dir() else []


def down(settings: Settings, say: Callable[[str], None], workdir: Path | None = None) -> bool:
    """Remove every lab a demo workspace holds (a kept demo); files stay. False when there was none."""
    ws = workspace_settings(settings, workdir)
    labs = demo_labs(ws)
    for name in labs:
        Lab(ws, name).down(say)
    return bool(labs)


def prepare_workspace(settings: Settings, ws: Settings, say: Callable[[str], None]) -> None:
    """Start from a clean workspace: remove an earlier demo's labs and files, then share the lab image cache."""
    root = ws.home
    if root.exists():
        if not (root / MARKER).exists() and any(root.iterdir()):
            raise DemoError(
                f"{root} exists and is not a demo workspace; the demo only ever wipes its own",
                hint="pass another --workdir, or empty that folder",
            )
        for name in demo_labs(ws):
            say(f"removing lab {name} left by an earlier demo")
            Lab(ws, name).down(say)
        shutil.rmtree(root)
    root.mkdir(parents=True, mode=0o700)
    (root / MARKER).write_text("A sentryctl demo workspace: wiped by the next 'sentryctl demo'.\n")
    # Without SENTRY_LAB_CACHE the cache is <home>/cache: point the workspace's at the caller's, so the base
    # image (a minute to build) is shared rather than built again.
    if "SENTRY_LAB_CACHE" not in os.environ:
        settings.lab_cache.mkdir(parents=True, exist_ok=True)
        (root / "cache").symlink_to(settings.lab_cache, target_is_directory=True)
