"""The demo's runner: a fresh workspace and lab, every step of :data:`~.story.STORY` in order, a check that the
ledger's chain holds, and where everything is; the lab is removed at the end (also on failure) unless kept."""

from __future__ import annotations

import time
from pathlib import Path

from .. import releases
from ..lab import system
from ..ledger import Ledger
from ..settings import Settings
from .cast import DEFAULT_LAB
from .records import DemoError, DemoEvent, DemoReport, Progress
from .stage import Stage
from .story import STORY
from .workspace import prepare_workspace, workspace_settings


def run_demo(
    settings: Settings,
    *,
    lab_name: str = DEFAULT_LAB,
    keep: bool = False,
    workdir: Path | None = None,
    on_progress: Progress | None = None,
) -> DemoReport:
    """Tell the whole story on a fresh lab; the lab is removed at the end (also on failure) unless ``keep``."""
    emit: Progress = on_progress or (lambda _e: None)
    total = len(STORY)

    def info(message: str) -> None:
        emit(DemoEvent("info", message, total=total))

    system.require_root()  # before the workspace is touched
    system.require_tools()
    ws = workspace_settings(settings, workdir)
    started = time.monotonic()
    prepare_workspace(settings, ws, info)
    with Ledger.open(None, ws.home) as ledger:
        stage = Stage(settings, ws, lab_name, ledger, emit, total)
        stage.report.kept = keep
        try:
            for index, step in enumerate(STORY, 1):
                with stage.step(index, step.name, step.text):
                    step.perform(stage)
            if not ledger.verify().ok:
                raise DemoError("the ledger's hash chain does not verify", hint=f"sentryctl ledger verify ({ws.home})")
            locations(stage, keep)
        finally:
            if stage.collector is not None:
                stage.collector.stop()
            if not keep:
                stage.lab.down(info)
            stage.report.total_seconds = time.monotonic() - started
    return stage.report


def locations(stage: Stage, keep: bool) -> None:
    """Where everything is, and commands to explore it with, in the report."""
    ws, report = stage.ws, stage.report
    report.locations = {
        "workspace": str(ws.home),
        "ledger": str(ws.home / "ledger.db"),
        "inventories": str(ws.inventories),
        "release catalog": str(releases.catalog_dir(ws.home)),
        "training packets": str(ws.home / "training"),
        "evidence bundles": str(ws.home / "evidence"),
        "run artifacts": str(ws.runs_dir),
    }
    env = f"SENTRY_HOME={ws.home} SENTRY_INVENTORIES={ws.inventories}"
    report.explore = [
        f"{env} sentryctl ledger log --client acme",
        f"{env} sentryctl rollout status",
        f"{env} sentryctl client show nightowl",
        *(f"{env} sentryctl audit verify {a['bundle']}" for a in report.audits.values()),
    ]
    if keep:
        host = f"{stage.lab.name}-2"
        report.explore.append(f"{env} sentryctl lab ssh --name {stage.lab.name} {host} journalctl -u sentry-agent")
