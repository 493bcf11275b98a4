"""``bench/run``: measure sentryctl against the SSH floor and bare ansible-playbook on N lab hosts, for each N."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator import releases, sshmux
from orchestrator.errors import OrchestratorError
from orchestrator.lab.manager import MAX_HOSTS, Lab
from orchestrator.lab.state import LabState
from orchestrator.paths import project_root
from orchestrator.releases import signing
from orchestrator.settings import Settings

from . import commands, report
from .labprobe import LabProbe
from .measure import Measurement, median_measurement, run_measured

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results"
DEFAULT_CACHE = "/var/cache/sentryctl-lab"
SCHEMA = 1
# Shipped waves and gates; only the soak between waves (pure waiting) is left out.
BENCH_TRACKS = {"hotfix": {"soak_seconds": 0}}


class BenchError(Exception):
    """Raised when the benchmark cannot run or a measured step failed; the message names the fix."""


def host_counts(text: str) -> list[int]:
    try:
        counts = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        counts = []
    if not counts or any(not 1 <= n <= MAX_HOSTS for n in counts):
        raise argparse.ArgumentTypeError(f"give host counts from 1 to {MAX_HOSTS}, comma-separated, e.g. 5,10,20")
    return counts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description=(
            "Measure sentryctl against the SSH floor and bare ansible-playbook on N lab hosts (root; brings up "
            "and removes its own lab). Prints ratios of steps measured in the same run and writes them as JSON "
            "and a Markdown table."
        ),
        epilog=(
            "Example: bench/run --hosts 5,10,20,50 --update-readme   (on 2 cores: 5,10,20 take about 80 minutes, "
            "50 adds about two hours)"
        ),
    )
    parser.add_argument("--hosts", type=host_counts, default=[5, 10, 20], help="host counts [default: 5,10,20]")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results folder [default: {DEFAULT_OUT}]")
    parser.add_argument("--name", default="bn", help="lab name [default: bn]")
    parser.add_argument("--home", type=Path, help="state folder [default: a new temporary one, removed at the end]")
    parser.add_argument("--keep-home", action="store_true", help="keep the state folder (logs, runs, ledger)")
    parser.add_argument(
        "--update-readme", action="store_true", help="also put the tables into bench/README.md (between its markers)"
    )
    parser.add_argument("--floor-repeats", type=int, default=5, help="runs of each SSH floor; the median counts")
    parser.add_argument(
        "--lab-cache",
        type=Path,
        default=Path(os.environ.get("SENTRY_LAB_CACHE", DEFAULT_CACHE)),
        help=f"lab image cache, shared [default: $SENTRY_LAB_CACHE or {DEFAULT_CACHE}]",
    )
    return parser.parse_args(argv)


@dataclass
class Bench:
    settings: Settings
    lab_name: str
    lab_cache: Path
    floor_repeats: int
    say: Callable[[str], None]
    release_counter: int = 0

    @property
    def lab(self) -> Lab:
        return Lab(self.settings, self.lab_name)

    @property
    def logs(self) -> Path:
        return self.settings.home / "logs"

    @property
    def env(self) -> dict[str, str]:
        return commands.sentryctl_env(self.settings, self.lab_cache)

    def master_dirs(self) -> list[Path]:
        # Every run, probe and check of the bench's lab shares one folder of masters (orchestrator.sshmux).
        return [sshmux.masters_dir(self.settings.home, self.settings.inventories / self.lab_name / "known_hosts")]

    def fresh_lab(self, n: int) -> tuple[LabState, LabProbe]:
        self.lab.down(lambda _m: None)
        state = self.lab.up(n, lambda _m: None)
        inv_dir = Path(state.inventory_dir)
        (inv_dir / "tracks.yml").write_text(yaml.safe_dump(BENCH_TRACKS))
        probe = LabProbe(state)
        took = probe.settle()
        self.say(f"N={n}: {n} fresh lab host(s) up on {state.subnet}, idle after {took:.0f}s")
        return state, probe

    def measure(
        self, step: str, argv: Sequence[str], env: dict[str, str], probe: LabProbe, n: int, ok_rc: Sequence[int] = (0,)
    ) -> Measurement:
        for folder in self.master_dirs():
            sshmux.close_masters(folder)
        probe.settle()
        m = run_measured(step, argv, env=env, log=self.logs / f"n{n}-{step}.log", probe=probe, hosts=n)
        self.say(
            f"N={n}: {step}: {m.wall:.1f}s wall, {m.cpu:.1f}s controller CPU, {m.hosts_cpu:.1f}s hosts CPU, "
            f"{m.tree_rss_mb:.0f} MB peak, {m.logins_per_host:.1f} SSH logins/host (rc {m.rc})"
        )
        if m.rc not in ok_rc:
            raise BenchError(
                f"step {step} on {n} host(s) exited {m.rc}; see {m.log} (state kept in {self.settings.home})"
            )
        return m

    def floors(self, state: LabState, probe: LabProbe, n: int) -> dict[str, Measurement]:
        lab = self.lab
        hosts = list(state.hosts.values())

        def with_options(argv: list[str], *options: str) -> list[str]:
            return [*argv[:-1], *options, argv[-1]]  # options go before the destination

        fresh = [with_options(lab.ssh_argv(h), "-o", "ControlMaster=no", "-o", "ControlPath=none") for h in hosts]
        cp_dir = Path(tempfile.mkdtemp(prefix="bench-cp-"))
        try:
            path = f"ControlPath={cp_dir}/%C"
            for h in hosts:
                subprocess.run(
                    with_options(
                        lab.ssh_argv(h), "-o", "ControlMaster=yes", "-o", "ControlPersist=600", "-o", path, "-fN"
                    ),
                    check=True,
                    timeout=30,
                )
            reuse = [with_options(lab.ssh_argv(h), "-o", "ControlMaster=no", "-o", path) for h in hosts]
            out: dict[str, Measurement] = {}
            for step, argvs in (("ssh_fresh", fresh), ("ssh_reuse", reuse)):
                script = commands.ssh_floor_script(argvs)
                runs = [
                    run_measured(
                        step, script, env=dict(os.environ), log=self.logs / f"n{n}-{step}.log", probe=probe, hosts=n
                    )
                    for _ in range(self.floor_repeats)
                ]
                if any(r.rc for r in runs):
                    raise BenchError(f"ssh to the lab hosts failed; see {runs[0].log}")
                out[step] = median_measurement(runs)
                m = out[step]
                self.say(
                    f"N={n}: {step}: {m.wall * 1000:.0f} ms wall, {m.cpu * 1000:.0f} ms CPU (median of {len(runs)})"
                )
        finally:
            sshmux.close_masters(cp_dir)
            shutil.rmtree(cp_dir, ignore_errors=True)
        return out

    def bare(self, step: str, probe: LabProbe, n: int) -> tuple[Measurement, list[str], dict[str, str], str]:
        run_id = f"bench-{step}-n{n}"
        argv, env = commands.bare_site_command(self.settings, self.lab_name, run_id)
        return self.measure(step, argv, env, probe, n), argv, env, str(self.settings.runs_dir / run_id)

    def same_settings(self, bare_argv: list[str], bare_env: dict[str, str], bare_dir: str) -> list[str]:
        runs = sorted(self.settings.runs_dir.glob(f"*-provision-{self.lab_name}-*"))
        if not runs:
            return ["no sentryctl provision run to compare with"]
        latest = runs[-1]
        command = json.loads((latest / "artifacts" / latest.name / "command").read_text())
        return commands.settings_differences(bare_argv, bare_env, bare_dir, command, str(latest))

    def new_release(self) -> str:
        if not signing.private_key_path(self.settings.home).exists():
            signing.keygen(self.settings.home)
        self.release_counter += 1
        version = f"1.0.{self.release_counter}"
        releases.build_release(project_root() / "agent", self.settings.home, version=version, notes="bench hotfix")
        return version

    def size(self, n: int) -> dict[str, Any]:
        steps: dict[str, Measurement] = {}
        notes: list[str] = []
        load_before = os.getloadavg()
        state, probe = self.fresh_lab(n)
        steps.update(self.floors(state, probe, n))
        steps["bare_cold"], *_ = self.bare("bare_cold", probe, n)
        state, probe = self.fresh_lab(n)
        name = self.lab_name
        steps["sentryctl_cold"] = self.measure(
            "sentryctl_cold", commands.sentryctl("provision", "--client", name), self.env, probe, n
        )
        steps["sentryctl_rerun"] = self.measure(
            "sentryctl_rerun", commands.sentryctl("provision", "--client", name), self.env, probe, n
        )
        steps["bare_rerun"], argv, env, bare_dir = self.bare("bare_rerun", probe, n)
        diffs = self.same_settings(argv, env, bare_dir)
        if diffs:
            notes.append(f"N={n}: bare ansible-playbook differs from sentryctl's run: {'; '.join(diffs)}")
        version = self.new_release()
        steps["rollout"] = self.measure(
            "rollout", commands.sentryctl("rollout", "start", version, "--client", name, "--yes"), self.env, probe, n
        )
        steps["converge"] = self.measure(
            "converge", commands.sentryctl("provision", "--client", name), self.env, probe, n
        )
        steps["audit"] = self.measure(
            "audit", commands.sentryctl("audit", "--client", name, "--json"), self.env, probe, n, ok_rc=(0, 1)
        )
        steps["audit_fast"] = self.measure(
            "audit_fast",
            commands.sentryctl("audit", "--client", name, "--no-converge-check", "--json"),
            self.env,
            probe,
            n,
            ok_rc=(0, 1),
        )
        for step in ("audit", "audit_fast"):
            if steps[step].rc:
                notes.append(f"N={n}: {step} found drift (exit 1); its timing still counts")
        self.lab.down(lambda _m: None)
        return {
            "hosts": n,
            "release": version,
            "same_settings": {"ok": not diffs, "differences": diffs},
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "steps": {k: v.to_json() for k, v in steps.items()},
            "ratios": report.ratios(steps),
            "notes": notes,
        }


def machine_info() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "hostname": socket.gethostname(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ansible": f"ansible-core {importlib.metadata.version('ansible-core')}, "
        f"ansible-runner {importlib.metadata.version('ansible-runner')}",
    }


def git_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{commit}-dirty" if git("status", "--porcelain", "--untracked-files=no") else commit


def write_results(out: Path, result: dict[str, Any]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stamp = result["date"].replace(":", "").replace("-", "")
    data = json.dumps(result, indent=2, sort_keys=True) + "\n"
    path = out / f"bench-{stamp}.json"
    path.write_text(data)
    (out / "latest.json").write_text(data)
    table = out / "latest.md"
    table.write_text(report.render(result))
    return path, table


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise BenchError("the benchmark brings up lab hosts and needs root; run it as root")
    os.environ["SENTRY_LAB_CACHE"] = str(args.lab_cache)
    home = args.home or Path(tempfile.mkdtemp(prefix="sentry-bench-"))
    settings = Settings(home=home.resolve(), inventories=home.resolve() / "inventories")
    settings.ensure_home()

    def say(message: str) -> None:
        print(f"--> {message}", file=sys.stderr, flush=True)

    bench = Bench(settings, args.name, args.lab_cache, max(1, args.floor_repeats), say)
    started = dt.datetime.now(dt.UTC)
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(),
        "commit": git_commit(),
        "command": "bench/run " + " ".join(sys.argv[1:]),
        "sizes": [],
    }
    ok = False
    try:
        for n in args.hosts:
            t0 = time.monotonic()
            result["sizes"].append(bench.size(n))
            say(f"N={n}: done in {time.monotonic() - t0:.0f}s")
            result["seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds())
            path, table = write_results(args.out, result)
        ok = True
    finally:
        try:
            bench.lab.down(lambda _m: None)
        finally:
            if ok and not args.keep_home and args.home is None:
                shutil.rmtree(home, ignore_errors=True)
            elif not ok:
                say(f"state kept for a look: {home}")
    print(report.render(result), end="")
    say(f"results: {path} and {table}")
    if args.update_readme:
        readme = ROOT / "bench" / "README.md"
        try:
            readme.write_text(report.replace_block(readme.read_text(), report.render(result)))
        except ValueError as exc:
            raise BenchError(f"bench/README.md not updated: {exc}") from exc
        say(f"tables written into {readme}")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        sys.exit(run(args))
    except (BenchError, OrchestratorError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
