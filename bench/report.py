"""Pure: ratios between the steps of one run, checked against the targets, and the short tables."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .measure import Measurement

STEP_TITLES: dict[str, str] = {
    "ssh_fresh": "ssh HOST true, every host at once, new connections",
    "ssh_reuse": "the same over open connections (ControlMaster)",
    "bare_cold": "bare ansible-playbook site.yml, fresh hosts",
    "sentryctl_cold": "sentryctl provision, fresh hosts",
    "sentryctl_rerun": "sentryctl provision again (idempotent)",
    "bare_rerun": "bare ansible-playbook site.yml again (idempotent)",
    "rollout": "sentryctl rollout start (hotfix: canary + waves, gates on)",
    "converge": "sentryctl provision shipping an agent change (full converge)",
    "audit": "sentryctl audit (checks + check-mode converge)",
    "audit_fast": "sentryctl audit --no-converge-check",
}


@dataclass(frozen=True)
class Ratio:
    key: str
    title: str
    numerator: str
    denominator: str
    target: float | None = None  # the ratio of wall times must be at most this

    def values(self, steps: Mapping[str, Measurement]) -> tuple[float, float, float] | None:
        """(wall ratio, controller CPU ratio, all-CPU ratio: controller and lab hosts), or None when a step is
        missing or measured nothing."""
        num, den = steps.get(self.numerator), steps.get(self.denominator)
        if num is None or den is None or den.wall <= 0:
            return None
        cpu = num.cpu / den.cpu if den.cpu > 0 else math.nan
        den_all = den.cpu + den.hosts_cpu
        return num.wall / den.wall, cpu, (num.cpu + num.hosts_cpu) / den_all if den_all > 0 else math.nan


RATIOS: tuple[Ratio, ...] = (
    Ratio("provision_cold", "sentryctl provision / bare ansible-playbook, cold", "sentryctl_cold", "bare_cold", 1.10),
    Ratio("provision_rerun", "the same, idempotent re-run", "sentryctl_rerun", "bare_rerun", 1.10),
    Ratio("rerun_vs_cold", "sentryctl idempotent re-run / cold run", "sentryctl_rerun", "sentryctl_cold", 0.50),
    Ratio("rollout_vs_converge", "hotfix rollout / full converge shipping it", "rollout", "converge", 0.34),
    Ratio("rollout_vs_rerun", "hotfix rollout / idempotent converge", "rollout", "sentryctl_rerun"),
    Ratio("audit_vs_floor", "audit / SSH floor (new connections)", "audit", "ssh_fresh"),
    Ratio("audit_fast_vs_floor", "audit without converge check / SSH floor", "audit_fast", "ssh_fresh"),
    Ratio("floor_fresh_vs_reuse", "SSH floor: new connections / reused", "ssh_fresh", "ssh_reuse"),
)


def ratios(steps: Mapping[str, Measurement]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in RATIOS:
        got = r.values(steps)
        if got is None:
            continue
        wall, cpu, all_cpu = got
        out[r.key] = {
            "title": r.title,
            "wall": round(wall, 3),
            "cpu": round(cpu, 3),
            "all_cpu": round(all_cpu, 3),
            "target": r.target,
            "met": None if r.target is None else wall <= r.target,
        }
    rollout = steps.get("rollout")
    if rollout is not None:
        out["rollout_logins_per_host"] = {
            "title": "SSH logins per host during a hotfix rollout",
            "value": round(rollout.logins_per_host, 2),
        }
    return out


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def ratio_cell(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "-"
    if "value" in entry:
        return _fmt(float(entry["value"]))
    mark = "" if entry["met"] is None else (" ✓" if entry["met"] else " ✗")
    return f"{_fmt(float(entry['wall']))} ({_fmt(float(entry['cpu']))}, {_fmt(float(entry['all_cpu']))}){mark}"


def ratio_table(sizes: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: one row per ratio, one column per host count. Cells: the ratio of wall times (of controller CPU
    seconds, of all CPU seconds: controller and lab hosts); the target applies to wall time."""
    head = (
        "| ratio: wall time (controller CPU, all CPU) | target | " + " | ".join(f"N={s['hosts']}" for s in sizes) + " |"
    )
    lines = [head, "|" + " --- |" * (2 + len(sizes))]
    for r in RATIOS:
        target = f"≤ {r.target:.2f}" if r.target is not None else ""
        cells = [ratio_cell(s["ratios"].get(r.key)) for s in sizes]
        lines.append(f"| {r.title} | {target} | " + " | ".join(cells) + " |")
    cells = [ratio_cell(s["ratios"].get("rollout_logins_per_host")) for s in sizes]
    lines.append("| SSH logins per host during the hotfix rollout | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def steps_table(sizes: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: what each step cost, per host count."""
    lines = [
        "| step | N | wall s | controller CPU s | hosts CPU s | peak RSS MB: tree (one process) | SSH logins/host |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size in sizes:
        for name, title in STEP_TITLES.items():
            data = size["steps"].get(name)
            if data is None:
                continue
            m = Measurement.from_json(data)
            lines.append(
                f"| {title} | {m.hosts} | {m.wall:.1f} | {m.cpu:.1f} | {m.hosts_cpu:.1f} | "
                f"{m.tree_rss_mb:.0f} ({m.maxrss_mb:.0f}) | {m.logins_per_host:.1f} |"
            )
    return "\n".join(lines)


def render(result: Mapping[str, Any]) -> str:
    machine = result["machine"]
    sizes = result["sizes"]
    head = (
        f"Benchmark of {result['date']} on {machine['hostname']} ({machine['cpus']} cores, {machine['cpu_model']}, "
        f"{machine['memory_gb']} GB; {machine['ansible']}), commit {result['commit']}"
    )
    parts = [head, "", ratio_table(sizes), "", steps_table(sizes)]
    notes = [n for s in sizes for n in s.get("notes", [])]
    if notes:
        parts += ["", *(f"- {n}" for n in notes)]
    return "\n".join(parts) + "\n"


README_START = "<!-- bench:start (written by bench/run --update-readme) -->"
README_END = "<!-- bench:end -->"


def replace_block(text: str, block: str) -> str:
    """``text`` with what lies between the README markers replaced by ``block``; the markers must be there once."""
    if (
        text.count(README_START) != 1
        or text.count(README_END) != 1
        or text.index(README_START) > text.index(README_END)
    ):
        raise ValueError(f"expected one {README_START!r} ... {README_END!r} block")
    head, rest = text.split(README_START)
    _, tail = rest.split(README_END)
    return f"{head}{README_START}\n{block.rstrip()}\n{README_END}{tail}"
