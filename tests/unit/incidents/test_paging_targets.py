"""client.yml's ``paging`` section is checked when the inventory loads: an unknown target or secret name is
refused in one line before anything runs; without the section, target X uses secret paging_X; backoff."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from orchestrator.errors import InventoryError
from orchestrator.incidents.paging import backoff
from orchestrator.incidents.targets import secret_name
from orchestrator.inventory import load


def inventory(tmp_path: Path, paging: str) -> Path:
    d = tmp_path / "acme"
    d.mkdir()
    (d / "hosts.yml").write_text("all:\n  hosts:\n    game1: {ansible_host: 10.0.0.1}\n")
    (d / "client.yml").write_text(f"client: acme\ntier: enterprise\n{paging}")
    return tmp_path


def test_a_valid_paging_section_loads(tmp_path: Path) -> None:
    inv = load(inventory(tmp_path, "paging:\n  primary: paging_second_line\n"), "acme")
    assert secret_name(inv.meta.get("paging"), "primary") == "paging_second_line"
    assert secret_name(inv.meta.get("paging"), "second_line") == "paging_second_line"
    assert secret_name(None, "primary") == "paging_primary"


@pytest.mark.parametrize(
    ("paging", "message"),
    [
        ("paging:\n  boss: paging_primary\n", "paging: 'boss' is not a paging target"),
        ("paging:\n  primary: collector_token\n", "paging: primary: 'collector_token' is not a paging secret"),
        ("paging: [primary]\n", "paging"),
    ],
)
def test_bad_paging_sections_are_refused_at_load(tmp_path: Path, paging: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message) as err:
        load(inventory(tmp_path, paging), "acme")
    assert "\n" not in str(err.value)


def test_backoff_doubles_from_5_s_up_to_5_min() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4, 10, 100)] == [5, 10, 20, 40, 300, 300]
    assert backoff(0) == dt.timedelta(seconds=5)
