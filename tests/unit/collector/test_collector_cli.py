"""``collector init`` / ``serve`` wiring: TLS material is made private, and serving without it is refused."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.collector import config
from orchestrator.settings import Settings


def run(home: Path, *args: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(["--home", str(home), *args])
    return int(exited.value.code or 0)


def test_serve_without_init_is_refused_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "collector", "serve") == 1
    assert "run 'sentryctl collector init' first; the collector serves TLS only" in capsys.readouterr().err


def test_init_makes_a_private_key_a_pinnable_cert_and_refuses_to_redo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "collector", "init", "--listen", "10.1.2.3:9443", "--san", "collector.lab", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    directory = tmp_path / "collector"
    assert stat.S_IMODE((directory / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "operator.token").stat().st_mode) == 0o600
    assert shown["url"] == "https://10.1.2.3:9443"
    assert shown["cert_sha256"] == config.cert_sha256(directory / "cert.pem")
    loaded = config.load(Settings(home=tmp_path, inventories=tmp_path / "inv"))
    assert (loaded.listen_host, loaded.listen_port) == ("10.1.2.3", 9443)
    assert run(tmp_path, "collector", "init") == 1
    assert "--force" in capsys.readouterr().err
    (directory / "key.pem").chmod(0o644)
    assert run(tmp_path, "collector", "serve") == 1
    assert "chmod 600" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["nowhere", "1.2.3.4", "1.2.3.4:0", "host:99999", "name.example:443"])
def test_a_bad_listen_address_is_refused(tmp_path: Path, bad: str) -> None:
    assert run(tmp_path, "collector", "init", "--listen", bad) == 2
    assert not (tmp_path / "collector").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("collector", "prune", "--older-than", "30"),
        ("collector", "prune", "--older-than", "0d"),
        ("collector", "prune", "--older-than", "1w"),
        ("fleet", "alerts", "--client", "acme", "--since", "yesterday"),
        ("fleet", "alerts", "--client", "acme", "--since", "-1h"),
    ],
)
def test_a_bad_duration_is_a_usage_error_naming_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    assert run(tmp_path, *args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, errors
    assert "invalid duration" in errors[0] and "write a number and a unit: 90s, 15m, 1h, 30d" in errors[0]
    # Refused before anything was opened or written.
    assert not (tmp_path / "ledger.db").exists()
