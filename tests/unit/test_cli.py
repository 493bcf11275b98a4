"""The CLI's wiring: the command tree, exit codes and the one place errors are translated."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from orchestrator import cli

GROUPS = {
    "lab",
    "client",
    "hosts",
    "preflight",
    "provision",
    "release",
    "rollout",
    "training",
    "audit",
    "ledger",
    "exec",
    "demo",
}


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_help_shows_the_whole_command_tree(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["--help"], capsys)
    assert code == 0
    listed = {
        line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.startswith("  ") and line.split()
    }
    assert listed >= GROUPS
    code, out, _ = run_main(["lab", "--help"], capsys)
    assert code == 0 and all(c in out for c in ("up", "down", "status", "ssh", "ping"))


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(["no-such-command"], capsys)[0] == 2
    assert run_main(["lab", "up", "--hosts", "0"], capsys)[0] == 2


def test_expected_error_is_one_line_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(["--home", str(tmp_path), "lab", "status", "--name", "Bad-Name"], capsys)
    assert code == 1
    assert (
        err.strip()
        == "error: invalid lab name 'Bad-Name' (use 1-12 lowercase letters and digits, starting with a letter)"
    )


def test_unexpected_error_writes_traceback_to_debug_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    @click.command("boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setitem(cli.cli.commands, "boom", boom)
    code, _, err = run_main(["--home", str(tmp_path), "boom"], capsys)
    assert code == cli.EXIT_UNEXPECTED
    assert err.startswith("internal error: RuntimeError: kaboom; traceback in ")
    log = (tmp_path / "debug.log").read_text()
    assert "Traceback" in log and "kaboom" in log
