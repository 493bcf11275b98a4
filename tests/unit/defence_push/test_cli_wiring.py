"""The push commands' wiring: exit codes (2 usage, 3 waiting for a window), --json on stdout, the kill switch."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from orchestrator import cli
from orchestrator.cli.defence_push import register_push
from orchestrator.ledger import Ledger
from orchestrator.settings import Settings

from .conftest import add_client, record_pack


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_push_status_and_revert_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    group = click.Group("defence")
    register_push(group)
    monkeypatch.setitem(cli.cli.commands, "defence", group)  # type: ignore[attr-defined]
    settings = Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv")
    with Ledger.open(None, settings.home) as ledger:
        add_client(settings, ledger, "acme", "professional", 2, window="Sat 02:00-03:00 UTC")
        record_pack(ledger, "1.0.0")
    base = ["--home", str(settings.home), "--inventories", str(settings.inventories), "defence"]

    code, _, err = run([*base, "push", "1.0.0", "--client", "acme", "--all", "--yes"], capsys)
    assert code == 2 and "exactly one of them" in err
    code, out, _ = run([*base, "push", "1.0.0", "--client", "acme", "--yes", "--json", "--dwell", "5s"], capsys)
    result = json.loads(out)
    assert code == 3 and result["state"] == "waiting_window" and result["exit_code"] == 3
    uid = result["push"]
    code, out, _ = run([*base, "status", uid, "--json"], capsys)
    assert code == 0 and json.loads(out)[0]["dwell_override_seconds"] == 5
    code, out, _ = run([*base, "revert", "--all", "--yes", "--wait", "0", "--json"], capsys)
    assert code == 0 and json.loads(out)["pushes"] == [uid]
    code, _, err = run([*base, "push", "--resume", uid, "--yes"], capsys)
    assert code == 1 and "is reverted; only a planned, running, waiting_window push can resume" in err
