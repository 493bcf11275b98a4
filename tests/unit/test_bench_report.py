"""The benchmark's pure parts: ratios against targets, and the tables the README shows."""

from __future__ import annotations

import math

import pytest

from bench import report
from bench.measure import Measurement, median, median_measurement


def m(step: str, wall: float, cpu: float, hosts: int = 5, logins: int = 0) -> Measurement:
    return Measurement(
        step=step,
        hosts=hosts,
        wall=wall,
        user=cpu * 0.75,
        sys=cpu * 0.25,
        maxrss_mb=80,
        tree_rss_mb=300,
        hosts_cpu=2 * cpu,
        logins=logins,
        rc=0,
    )


STEPS = {
    "ssh_fresh": m("ssh_fresh", 0.5, 0.4),
    "ssh_reuse": m("ssh_reuse", 0.025, 0.02),
    "bare_cold": m("bare_cold", 100.0, 50.0),
    "sentryctl_cold": m("sentryctl_cold", 105.0, 56.0),
    "sentryctl_rerun": m("sentryctl_rerun", 60.0, 30.0),
    "bare_rerun": m("bare_rerun", 50.0, 25.0),
    "rollout": m("rollout", 30.0, 12.0, logins=5),
    "converge": m("converge", 100.0, 48.0),
    "audit": m("audit", 40.0, 20.0),
}


def test_ratios_divide_wall_and_cpu_and_check_the_targets() -> None:
    got = report.ratios(STEPS)
    cold = got["provision_cold"]
    assert cold["wall"] == 1.05 and cold["cpu"] == 1.12 and cold["target"] == 1.10 and cold["met"] is True
    assert cold["all_cpu"] == 1.12  # hosts_cpu is twice the controller's in these fixtures
    rerun = got["provision_rerun"]
    assert rerun["wall"] == 1.2 and rerun["met"] is False
    assert got["rerun_vs_cold"]["wall"] == round(60 / 105, 3) and got["rerun_vs_cold"]["met"] is False
    assert got["rollout_vs_converge"]["wall"] == 0.3 and got["rollout_vs_converge"]["met"] is True
    assert got["rollout_vs_rerun"]["met"] is None  # no target: shown for reference
    assert got["floor_fresh_vs_reuse"]["wall"] == 20.0
    assert got["rollout_logins_per_host"]["value"] == 1.0


def test_a_missing_step_leaves_its_ratios_out() -> None:
    got = report.ratios({k: v for k, v in STEPS.items() if k != "audit"})
    assert "audit_vs_floor" not in got and "audit_fast_vs_floor" not in got
    assert "provision_cold" in got


def test_a_step_without_cpu_gives_no_cpu_ratio_but_still_a_wall_ratio() -> None:
    steps = {**STEPS, "bare_cold": m("bare_cold", 100.0, 0.0)}
    cold = report.ratios(steps)["provision_cold"]
    assert cold["wall"] == 1.05 and math.isnan(cold["cpu"])
    assert report.ratio_cell(cold) == "1.05 (n/a, n/a) ✓"


def test_cells_show_wall_then_cpu_and_whether_the_target_was_met() -> None:
    cell = {"wall": 1.234, "cpu": 0.5, "all_cpu": 0.75, "target": 1.1, "met": False}
    assert report.ratio_cell(cell) == "1.23 (0.50, 0.75) ✗"
    assert (
        report.ratio_cell({"wall": 2.0, "cpu": 1.0, "all_cpu": 3.0, "target": None, "met": None}) == "2.00 (1.00, 3.00)"
    )
    assert report.ratio_cell({"value": 3}) == "3.00"
    assert report.ratio_cell(None) == "-"


def size(n: int) -> dict[str, object]:
    steps = {k: Measurement(**{**v.__dict__, "hosts": n}) for k, v in STEPS.items()}
    return {"hosts": n, "steps": {k: v.to_json() for k, v in steps.items()}, "ratios": report.ratios(steps)}


def test_the_ratio_table_has_a_column_per_host_count_and_a_row_per_ratio() -> None:
    table = report.ratio_table([size(5), size(10)])
    lines = table.splitlines()
    assert lines[0].endswith("| N=5 | N=10 |")
    assert len(lines) == 2 + len(report.RATIOS) + 1
    cold = next(line for line in lines if line.startswith("| sentryctl provision / bare"))
    assert (
        cold
        == "| sentryctl provision / bare ansible-playbook, cold | ≤ 1.10 | 1.05 (1.12, 1.12) ✓ | 1.05 (1.12, 1.12) ✓ |"
    )
    assert lines[-1].endswith("| 1.00 | 0.50 |")  # 5 logins over 5, then 10 hosts


def test_the_steps_table_round_trips_measurements_through_json() -> None:
    table = report.steps_table([size(5)])
    row = next(line for line in table.splitlines() if line.startswith("| sentryctl rollout start"))
    assert (
        row
        == "| sentryctl rollout start (hotfix: canary + waves, gates on) | 5 | 30.0 | 12.0 | 24.0 | 300 (80) | 1.0 |"
    )
    assert "audit --no-converge-check" not in table  # not measured here


def test_render_names_the_date_machine_and_commit() -> None:
    result = {
        "date": "2026-11-23T18:00:00Z",
        "commit": "abc1234",
        "machine": {
            "hostname": "vm",
            "cpus": 2,
            "cpu_model": "Xeon",
            "memory_gb": 23.5,
            "ansible": "ansible-core 2.19",
        },
        "sizes": [{**size(2), "notes": ["N=2: something worth knowing"]}],
    }
    text = report.render(result)
    assert text.startswith("Benchmark of 2026-11-23T18:00:00Z on vm (2 cores, Xeon, 23.5 GB; ansible-core 2.19)")
    assert "commit abc1234" in text and text.endswith("- N=2: something worth knowing\n")


def test_median_and_the_median_run() -> None:
    assert median([3, 1, 2]) == 2 and median([4, 1, 2, 3]) == 2.5
    runs = [m("ssh_fresh", w, w / 2) for w in (0.9, 0.3, 0.5)]
    chosen = median_measurement(runs)
    assert chosen.wall == 0.5 and chosen.cpu == 0.25 and chosen.extra["walls"] == [0.9, 0.3, 0.5]


def test_the_readme_block_is_replaced_between_its_markers_only() -> None:
    text = f"# Title\n\nbefore\n{report.README_START}\nold table\n{report.README_END}\nafter\n"
    new = report.replace_block(text, "| new | table |\n")
    assert new == f"# Title\n\nbefore\n{report.README_START}\n| new | table |\n{report.README_END}\nafter\n"
    assert report.replace_block(new, "| new | table |") == new  # idempotent


@pytest.mark.parametrize(
    "text",
    ["no markers", f"{report.README_START} only the start", f"{report.README_END} x {report.README_START}",
     f"{report.README_START}{report.README_START}{report.README_END}"],
)  # fmt: skip
def test_a_readme_without_exactly_one_block_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected one"):
        report.replace_block(text, "table")
