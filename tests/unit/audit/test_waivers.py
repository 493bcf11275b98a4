"""Waiver files: valid ones load by (check, host); every kind of bad entry is refused with the entry named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from orchestrator.audit.errors import EXIT_NOT_AUDITED, WaiverError
from orchestrator.audit.waivers import load_waivers

TODAY = dt.date(2026, 11, 23)
CHECKS = ["agent.health", "baseline.banner"]
HOSTS = ["game1", "game2"]
GOOD = {
    "check": "agent.health",
    "host": "game1",
    "justification": "vendor maintenance, ticket OPS-1234",
    "approved_by": "Ada Auditor",
    "expires": "2026-12-31",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waivers.yml"
    path.write_text(text)
    return path


def entry(**changes: object) -> str:
    fields = {**GOOD, **changes}
    lines = [f"    {k}: {v}" for k, v in fields.items() if v is not None]
    return "waivers:\n  -\n" + "\n".join(lines) + "\n"


def load(path: Path, today: dt.date = TODAY) -> dict[tuple[str, str], object]:
    return dict(load_waivers(path, checks=CHECKS, hosts=HOSTS, today=today))


def test_valid_waiver_loads_by_check_and_host(tmp_path: Path) -> None:
    waivers = load(write(tmp_path, entry()))
    waiver = waivers[("agent.health", "game1")]
    assert waiver.expires == dt.date(2026, 12, 31)  # type: ignore[attr-defined]
    assert waiver.approved_by == "Ada Auditor"  # type: ignore[attr-defined]


def test_valid_through_its_expiry_day_and_refused_the_day_after(tmp_path: Path) -> None:
    path = write(tmp_path, entry(expires="2026-11-23"))
    assert load(path, TODAY)
    with pytest.raises(WaiverError, match=r"expired on 2026-11-23.*renew it"):
        load(path, TODAY + dt.timedelta(days=1))


def test_empty_file_means_no_waivers(tmp_path: Path) -> None:
    assert load(write(tmp_path, "")) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (entry(check="agent.nope"), "unknown check 'agent.nope'"),
        (entry(host="game9"), "unknown host 'game9'"),
        (entry(justification="ok"), "needs a justification"),
        (entry(approved_by="''"), "needs approved_by"),
        (entry(expires="next-week"), "expires must be a date"),
        (entry(expires=None), "missing expires"),
        (entry(colour="red"), "unknown colour"),
        ("waivers: {check: agent.health}\n", "one key 'waivers' with a list"),
        ("- just a list\n", "one key 'waivers' with a list"),
        ("waivers:\n  - just text\n", "waiver 1 is not a mapping"),
        ("waivers: [\n", "cannot read waiver file"),
    ],
)
def test_bad_waiver_files_are_refused_with_the_entry_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(WaiverError, match=message) as info:
        load(write(tmp_path, text))
    assert info.value.exit_code == EXIT_NOT_AUDITED
    assert "\n" not in str(info.value)


def test_a_duplicate_is_refused(tmp_path: Path) -> None:
    text = entry() + entry().split("\n", 1)[1]
    with pytest.raises(WaiverError, match=r"waiver 2 repeats agent\.health on game1"):
        load(write(tmp_path, text))


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WaiverError, match="does not exist"):
        load(tmp_path / "nope.yml")
