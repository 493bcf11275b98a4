"""``sentryctl defence`` wiring: build from files, list, show, verify; --json shapes; exit codes 0, 1 and 2, one
line and no traceback on errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator import cli, paths
from orchestrator.releases import signing


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    signing.keygen(home)
    return home


def invoke(home: Path, *args: str) -> Result:
    inventories = home.parent / "inventories"
    # Wide, so the table never wraps a digest whatever the terminal of the test run.
    runner = CliRunner(env={"COLUMNS": "250"})
    return runner.invoke(cli.cli, ["--home", str(home), "--inventories", str(inventories), "defence", *args])


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


BLOCKLIST = "- net: 203.0.113.0/24\n  expires: 7d\n  comment: botnet X\n- {net: '2001:db8:dead::/48', expires: 1d}\n"


def test_help_teaches_both_file_formats() -> None:
    result = CliRunner().invoke(cli.cli, ["defence", "build", "--help"])
    assert result.exit_code == 0
    assert all(s in result.output for s in ("(?P<ip>", "net: 203.0.113.0/24", "expires: 7d", "Example:"))
    group = CliRunner().invoke(cli.cli, ["defence", "--help"]).output
    assert all(c in group for c in ("build", "list", "show", "verify"))


def test_build_list_show_verify(home: Path) -> None:
    rules = str(paths.project_root() / "agent" / "rules" / "rules.json")
    blocklist = write(home.parent / "block.yml", BLOCKLIST)
    result = invoke(home, "build", "--version", "2026.12.7", "--rules", rules, "--blocklist", blocklist, "--json")
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert (built["version"], built["rule_count"], built["blocklist_count"]) == ("2026.12.7", 2, 2)
    assert built["signed_by"] == signing.public_fingerprint(home) and len(built["digest"]) == 64
    plain = invoke(home, "build", "--version", "2026.12.10", "--blocklist", blocklist)
    assert plain.exit_code == 0 and "built defence pack 2026.12.10: 0 rules, 2 blocklist entries" in plain.stdout

    listed = json.loads(invoke(home, "list", "--json").stdout)
    assert [p["version"] for p in listed] == ["2026.12.7", "2026.12.10"]
    assert built["digest"][:12] in invoke(home, "list").stdout

    shown = json.loads(invoke(home, "show", "2026.12.7", "--json").stdout)
    assert shown["rules"]["version"] == "2026.12.1" and shown["blocklist"][0]["net"] == "203.0.113.0/24"
    text = invoke(home, "show", "2026.12.7").stdout
    assert "rule game-bruteforce" in text and "block 2001:db8:dead::/48 until" in text and "# botnet X" in text

    verified = invoke(home, "verify", "2026.12.7")
    assert verified.exit_code == 0 and verified.stdout.startswith("verified: defence pack 2026.12.7")
    (home / "defence" / "packs" / "2026.12.7" / "pack.json.sig").write_bytes(bytes(64))
    broken = invoke(home, "verify", "2026.12.7", "--json")
    assert broken.exit_code == 1
    answer = json.loads(broken.stdout)
    assert answer["verified"] is False and "pack.json.sig differs" in answer["error"]


@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        (["build", "--version", "1.0.0"], {}, "give --rules FILE, --blocklist FILE, or both"),
        (["build", "--version", "1.0", "--blocklist", "{b}"], {"b": BLOCKLIST}, "invalid pack version"),
        (["build", "--version", "1.0.0", "--blocklist", "{b}"], {"b": "- {net: 10.0.0.1/8, expires: 1d}"}, "host bits"),
        (["build", "--version", "1.0.0", "--blocklist", "{b}"], {"b": "net: x\n"}, "non-empty list"),
        (["build", "--version", "1.0.0", "--blocklist", "{b}"], {"b": "- [unclosed\n"}, "not valid YAML"),
        (["build", "--version", "1.0.0", "--rules", "{b}"], {"b": "{nope"}, "not valid JSON"),
        (
            ["build", "--version", "1.0.0", "--rules", "{b}"],
            {"b": '{"version": "1", "rules": [{"id": "r", "source": "game", "pattern": "(?P<ip>(a+)+)$",'
                  ' "threshold": 1, "window_seconds": 1, "ban_seconds": 1}]}'},
            "rule r: ",
        ),
    ],
)  # fmt: skip
def test_usage_problems_exit_2_in_one_line(home: Path, args: list[str], files: dict[str, str], message: str) -> None:
    paths_ = {k: write(home.parent / f"{k}.txt", v) for k, v in files.items()}
    result = sentryctl(home, *[a.format(**paths_) for a in args])
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("--> ")]  # stage lines aside
    assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0]
    assert not (home / "defence" / "packs" / "1.0.0").exists()


def test_a_missing_pack_exits_1(home: Path) -> None:
    for command in ("show", "verify"):
        result = sentryctl(home, command, "9.9.9")
        assert result.returncode == 1 and "no defence pack 9.9.9" in result.stderr


def sentryctl(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point, where errors become exit codes and one line on stderr."""
    command = [sys.executable, "-m", "orchestrator", "--home", str(home), "--inventories", str(home.parent / "inv")]
    return subprocess.run([*command, "defence", *args], capture_output=True, text=True, timeout=60, check=False)
