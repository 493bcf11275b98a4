"""``sentryctl release`` wiring: options reach the core, --json shapes, exit codes 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from orchestrator import cli
from orchestrator.releases import ReleaseError


def invoke(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli.cli, ["--home", str(home), "release", *args])


def test_release_is_built_not_planned() -> None:
    assert isinstance(cli.cli.commands["release"], click.Group)
    result = CliRunner().invoke(cli.cli, ["release", "--help"])
    assert result.exit_code == 0
    assert all(c in result.output for c in ("keygen", "build", "list", "show", "verify", "Example:"))


def test_keygen_build_list_show_verify(tmp_path: Path) -> None:
    result = invoke(tmp_path, "keygen")
    assert result.exit_code == 0, result.output
    assert "release signing key ed25519:" in result.output
    fingerprint = result.output.split()[3]
    assert invoke(tmp_path, "keygen").exit_code == 1  # never silently replaced

    notes = tmp_path / "notes.md"
    notes.write_text("Tighter [bold]ssh[/bold] rule.\n")
    result = invoke(
        tmp_path, "build", "--version", "1.10.0", "--track", "feature", "--requires-training", "ids-tuning-201",
        "--min-previous", "1.9.0", "--notes", str(notes), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert {k: built[k] for k in ("version", "track", "requires_training", "min_previous_version", "notes")} == {
        "version": "1.10.0",
        "track": "feature",
        "requires_training": "ids-tuning-201",
        "min_previous_version": "1.9.0",
        "notes": "Tighter [bold]ssh[/bold] rule.",
    }
    assert built["signed_by"] == fingerprint and len(built["sha256"]) == 64
    assert built["manifest"]["files"]["VERSION"] and built["bundle"].endswith("1.10.0/sentry-agent-1.10.0.tar.gz")
    assert invoke(tmp_path, "build", "--version", "1.9.0", "--track", "hotfix").exit_code == 0

    listed = json.loads(invoke(tmp_path, "list", "--json").stdout)
    assert [r["version"] for r in listed] == ["1.9.0", "1.10.0"]
    assert "manifest" not in listed[0] and listed[1]["files"] == built["files"]
    table = invoke(tmp_path, "list").output
    assert table.index("1.9.0") < table.index("1.10.0") and "ids-tuning-201" in table and built["sha256"][:12] in table

    shown = invoke(tmp_path, "show", "1.10.0", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout) == built
    assert "Tighter [bold]ssh[/bold] rule." in invoke(tmp_path, "show", "1.10.0").output  # notes are not markup

    result = invoke(tmp_path, "verify", "1.10.0")
    assert result.exit_code == 0
    assert result.output.startswith("verified: sentry-agent-1.10.0.tar.gz (feature 1.10.0)")
    assert invoke(tmp_path, "verify", built["bundle"]).exit_code == 0


def test_empty_catalog(tmp_path: Path) -> None:
    assert json.loads(invoke(tmp_path, "list", "--json").stdout) == []
    assert "no releases yet" in invoke(tmp_path, "list").output


@pytest.mark.parametrize(
    "args",
    [
        ["build", "--track", "hotfix"],  # --version missing
        ["build", "--version", "1.0.0", "--track", "nightly"],
        ["build", "--version", "1.0.0", "--track", "hotfix", "--notes", "/no/such/notes.md"],
        ["build", "--version", "1.0.0", "--track", "hotfix", "--rules", "/no/such/rules.json"],
        ["verify"],
        ["show"],
        ["list", "--bogus"],
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, args: list[str]) -> None:
    assert invoke(tmp_path, *args).exit_code == 2


def test_expected_failures_exit_1(tmp_path: Path) -> None:
    result = invoke(tmp_path, "build", "--version", "1.0.0", "--track", "hotfix")
    assert result.exit_code == 1 and isinstance(result.exception, ReleaseError)
    assert "no release signing key" in str(result.exception)
    result = invoke(tmp_path, "show", "3.0.0")
    assert result.exit_code == 1 and "sentryctl release list" in str(result.exception)
    invoke(tmp_path, "keygen")
    result = invoke(tmp_path, "build", "--version", "1.0.0", "--track", "hotfix", "--requires-training", "ids-101")
    assert result.exit_code == 1 and "cannot require training" in str(result.exception)


def test_verify_failure_is_one_line_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    invoke(tmp_path, "keygen")
    invoke(tmp_path, "build", "--version", "1.0.0", "--track", "hotfix")
    bundle = tmp_path / "releases" / "catalog" / "1.0.0" / "sentry-agent-1.0.0.tar.gz"
    data = bytearray(bundle.read_bytes())
    data[-40] ^= 0xFF
    bundle.write_bytes(bytes(data))
    with pytest.raises(SystemExit) as exc:
        cli.main(["--home", str(tmp_path), "release", "verify", "1.0.0"])
    out, err = capsys.readouterr()
    assert exc.value.code == 1 and out == ""
    assert err.startswith("error: sentry-agent-1.0.0.tar.gz: signature does not match")
    assert len(err.strip().splitlines()) == 1
