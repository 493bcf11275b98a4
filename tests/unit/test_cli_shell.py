"""What a shell user relies on: completion through our own entry point, and the exit codes --help promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from orchestrator import cli
from orchestrator.audit.errors import AuditError
from orchestrator.rollout.execute import RolloutPaused


def complete(words: str, cword: int, tmp_path: Path) -> list[str]:
    env = {
        **os.environ,
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
        cli.COMPLETE_VAR: "bash_complete",
        "SENTRY_HOME": str(tmp_path / "home"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if "," in line]


def test_bash_completion_offers_commands_subcommands_and_clients(tmp_path: Path) -> None:
    assert "rollout" in complete("sentryctl ro", 1, tmp_path)
    assert {"start", "status"} <= set(complete("sentryctl rollout st", 2, tmp_path))
    inventories = tmp_path / "inv"
    for name in ("acme", "arcadia", "nightowl"):
        (inventories / name).mkdir(parents=True)
        (inventories / name / "hosts.yml").write_text("all: {}\n")
    (inventories / "notaclient").mkdir()
    got = complete(f"sentryctl --inventories {inventories} provision --client a", 5, tmp_path)
    assert got == ["acme", "arcadia"]


def test_bash_completion_script_is_served(tmp_path: Path) -> None:
    env = {**os.environ, cli.COMPLETE_VAR: "bash_source"}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0
    assert "complete -o nosort -F" in proc.stdout and "sentryctl" in proc.stdout


@pytest.mark.parametrize(
    ("error", "code"),
    [(RolloutPaused("window closed"), 3), (AuditError("no signing key"), 4)],
)
def test_exit_codes_three_and_four_are_listed_and_kept(
    error: Exception, code: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert f"  {code}    " in out, out

    @click.command("boom")
    def boom() -> None:
        raise error

    cli.cli.add_command(boom)
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main(["boom"])
    finally:
        cli.cli.commands.pop("boom")
    assert exc.value.code == code
    assert capsys.readouterr().err.strip().startswith("error: ")
