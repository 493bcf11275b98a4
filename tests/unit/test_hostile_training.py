"""Training through the CLI: past dates need --backdate, a never-scheduled sign-off needs --unscheduled."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import cli


def run(base: list[str], *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        cli.main([*base, *args])
    _out, err = capsys.readouterr()
    return int(exc.value.code or 0), err


def test_backdate_and_unscheduled_are_explicit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--home", str(tmp_path / "home"), "--inventories", str(tmp_path / "inv")]
    setup = [
        ["client", "new", "acme", "--tier", "professional", "--host", "g1=203.0.113.10", "--mgmt-network",
         "198.51.100.0/24"],
        ["release", "keygen"],
        ["release", "build", "--version", "2.0.0", "--track", "feature", "--requires-training", "ops-2"],
    ]  # fmt: skip
    for args in setup:
        assert run(base, *args, capsys=capsys)[0] == 0
    who = ["--client", "acme", "--release", "2.0.0", "--trainer", "Lea"]
    code, err = run(base, "training", "schedule", *who, "--date", "2020-01-02", capsys=capsys)
    assert code == 1 and "--date 2020-01-02 is in the past" in err and "--backdate" in err
    code, err = run(base, "training", "signoff", *who, "--attendee", "Ana", capsys=capsys)
    assert code == 1 and "no training of acme for 2.0.0 is scheduled" in err and "--unscheduled" in err
    code, err = run(base, "training", "schedule", *who, "--date", "2020-01-02", "--backdate", "held", capsys=capsys)
    assert code == 0, err
    assert run(base, "training", "signoff", *who, "--attendee", "Ana", capsys=capsys)[0] == 0
    code, err = run(base, "training", "signoff", *who, "--attendee", "Ana", "--unscheduled", capsys=capsys)
    assert code == 0, err
    packets = tmp_path / "home" / "training" / "acme" / "2.0.0"
    assert all(p.stat().st_mode & 0o077 == 0 for p in [packets, *packets.iterdir()])
