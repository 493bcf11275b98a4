"""The demo without a lab: its story as data, its workspace handling, and how a step reports and fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.demo import STEPS, STORY, DemoError, DemoEvent
from orchestrator.demo.stage import Stage
from orchestrator.demo.workspace import MARKER, prepare_workspace, workspace_settings
from orchestrator.errors import OrchestratorError
from orchestrator.ledger import Ledger
from orchestrator.settings import Settings


def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", inventories=tmp_path / "inventories", verbosity=0, db_url=None)


def test_the_story_names_each_step_once_in_the_order_the_cli_tells_it() -> None:
    names = [s.name for s in STORY]
    assert len(set(names)) == len(names)
    assert tuple((s.name, s.text) for s in STORY) == STEPS
    # The order is the story: the lab first, the collector before provisioning wires agents to it, the attack
    # before the audit (which expects the ban lifted) and before telemetry (which looks for its alert).
    assert names[0] == "lab"
    assert names.index("collector") < names.index("provision")
    assert names.index("attack") < names.index("audit") < names.index("telemetry")


def test_a_folder_that_is_not_a_demo_workspace_is_refused_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTRY_LAB_CACHE", str(tmp_path / "cache"))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me\n")
    ws = workspace_settings(settings(tmp_path), precious)
    with pytest.raises(DemoError, match="is not a demo workspace") as caught:
        prepare_workspace(settings(tmp_path), ws, lambda _m: None)
    assert "--workdir" in (caught.value.hint or "")
    assert (precious / "notes.txt").read_text() == "keep me\n"


def test_a_demo_workspace_is_wiped_and_marked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_LAB_CACHE", raising=False)
    base = settings(tmp_path)
    ws = workspace_settings(base)
    prepare_workspace(base, ws, lambda _m: None)
    (ws.home / "ledger.db").write_text("an earlier demo's\n")
    prepare_workspace(base, ws, lambda _m: None)
    assert sorted(p.name for p in ws.home.iterdir()) == sorted([MARKER, "cache"])
    assert (ws.home / "cache").resolve() == base.lab_cache.resolve()


def test_a_step_is_announced_timed_and_a_core_failure_named_as_its_own(tmp_path: Path) -> None:
    ws = workspace_settings(settings(tmp_path))
    events: list[DemoEvent] = []
    with Ledger.open(None, tmp_path / "ledger") as ledger:
        stage = Stage(settings(tmp_path), ws, "dm", ledger, events.append, total=len(STORY))
        with stage.step(2, "onboard", "Onboard"):
            stage.say("hello", "ok")
        with (
            pytest.raises(DemoError, match=r"demo step 3 \(Pin\) failed: no key") as caught,
            stage.step(3, "pin", "Pin"),
        ):
            raise OrchestratorError("no key", hint="scan first")
        with pytest.raises(DemoError, match="lab is not up"):
            _ = stage.state
    assert caught.value.hint == "scan first"
    assert [(e.kind, e.step, e.index, e.total) for e in events] == [
        ("step", "onboard", 2, 12),
        ("ok", "onboard", 2, 12),
        ("done", "onboard", 2, 12),
        ("step", "pin", 3, 12),
    ]
    assert [t.step for t in stage.report.steps] == ["onboard"]
