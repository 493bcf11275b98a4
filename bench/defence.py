"""A detection-rule change shipped two ways on the same lab hosts, side by side in one run:

- as a pack: ``sentryctl defence push`` (canary, dwell, waves; the agents poll the collector and swap the rules
  without a restart);
- as an agent release: ``sentryctl rollout start`` of a release whose only change is the same rule (canary, soak,
  waves; Ansible over SSH, the agent restarts).

Both wait the same time after their canary (the pack's dwell is the release track's soak), so the difference is
the delivery. Measured: the time from the command's start until 95 % of the hosts run the change (the pack: the
collector's receive time of the first heartbeat reporting the pack's digest; the release: the command's end,
since a wave's hosts finish together), the command's wall time, and the goal "95 % within the dwell + 30 s". Then
the kill switch: ``defence revert`` and the time until every host reports the previous pack (goal <= 60 s).

    .venv/bin/python -m bench.defence [--hosts 4] [--dwell 30] [--subnet CIDR] [--out DIR]   # as root

A lab of its own (``bd``), one enterprise client (24/7: no window holds either command) provisioned by sentryctl's
own code with the collector wired in, the tiers' own pack poll and heartbeat intervals, all in a temporary state
folder removed at the end. Writes ``defence.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from bench.telemetry import wait_for
from orchestrator import clients, pins, provision
from orchestrator.collector import config, process
from orchestrator.lab import net
from orchestrator.lab.manager import Lab
from orchestrator.ledger import Ledger
from orchestrator.paths import project_root
from orchestrator.releases import build_release, signing
from orchestrator.settings import Settings

PORT = 8443
CLIENT = "bench"
SENTRYCTL = str(Path(sys.executable).parent / "sentryctl")
NEW_RULE = {
    "id": "game-exploit",
    "description": "A probe of the game server's known hole.",
    "source": "game",
    "pattern": r"EXPLOIT probe=\S+ ip=(?P<ip>[0-9a-fA-F:.]+)\s*$",
    "threshold": 2,
    "window_seconds": 60,
    "ban_seconds": 600,
}


def _utc(value: Any) -> dt.datetime:
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def first_reports(settings: Settings, column: str, value: str, since: dt.datetime) -> dict[str, dt.datetime]:
    """Per host, when the collector received its first heartbeat since ``since`` whose ``column`` (pack_digest
    or version) is ``value``. Compared in Python: SQLite keeps these times as text."""
    assert column in ("pack_digest", "version")
    with Ledger.open(settings.db_url, settings.home) as ledger, ledger._engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT host, received_at FROM telemetry_heartbeats WHERE client = :c AND {column} = :v"),  # noqa: S608
            {"c": CLIENT, "v": value},
        ).all()
    out: dict[str, dt.datetime] = {}
    for host, received in rows:
        when = _utc(received)
        if when >= since and (host not in out or when < out[host]):
            out[host] = when
    return out


def to_95(reached: dict[str, dt.datetime], names: Sequence[str], since: dt.datetime, what: str) -> float:
    missing = sorted(set(names) - set(reached))
    if missing:
        raise RuntimeError(f"hosts that never reported {what}: {', '.join(missing)}")
    return nearest_rank([(t - since).total_seconds() for t in reached.values()], 0.95)


def nearest_rank(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, -(-int(len(ordered) * share * 100) // 100)) - 1]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:4])} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.monotonic() - started, proc


def setup(args: argparse.Namespace, settings: Settings, lab: Lab) -> list[str]:
    """The lab up, one enterprise client on it, signing key and collector made, provisioned; its host names."""
    state = lab.up(args.hosts, lambda m: None, subnet=args.subnet)
    hosts = sorted(state.hosts.values(), key=lambda h: h.name)
    address = str(net.gateway(net.parse_subnet(state.subnet)))
    signing.keygen(settings.home)
    config.init(settings, listen=f"{address}:{PORT}", url=None, sans=[], force=True)
    spec = clients.build_spec(
        name=CLIENT, tier="enterprise", hosts=[f"{h.name}={h.address}" for h in hosts],
        mgmt_networks=[state.subnet], key_file=str(lab.key), game_ports=["7777"],
    )  # fmt: skip
    with Ledger.open(settings.db_url, settings.home) as ledger:
        inv = clients.create(settings, spec, ledger)
        pins.apply(inv, pins.scan(inv, inv.hosts), ledger)
        # The same wait after the canary on both lanes: the release track's soak is the pack's dwell.
        (inv.path / "tracks.yml").write_text(yaml.safe_dump({"hotfix": {"soak_seconds": args.dwell}}))
        result = provision.provision(settings, CLIENT, ledger)
    if not result.ok:
        raise RuntimeError("provisioning the bench hosts failed")
    return [h.name for h in hosts]


def digests(settings: Settings, *versions: str) -> list[str]:
    with Ledger.open(settings.db_url, settings.home) as ledger:
        packs = [ledger.pack(v) for v in versions]
    return [str(p.digest) for p in packs if p is not None]


def pack_lane(
    args: argparse.Namespace, settings: Settings, env: dict[str, str], names: list[str], rules_file: Path
) -> dict[str, Any]:
    """A first pack (the one the kill switch returns to), then the change: to 95 %, wall time, the kill switch."""
    rules = json.loads(rules_file.read_text())
    rules["rules"] = [r for r in rules["rules"] if r["id"] != NEW_RULE["id"]] + [{**NEW_RULE, "threshold": 5}]
    first_file = rules_file.with_name("rules-first.json")
    first_file.write_text(json.dumps(rules))
    timed([SENTRYCTL, "defence", "build", "--version", "1.0.0", "--rules", str(first_file), "--json"], env)
    timed([SENTRYCTL, "defence", "push", "1.0.0", "--client", CLIENT, "--dwell", "1s", "--yes", "--json"], env)
    timed([SENTRYCTL, "defence", "build", "--version", "1.1.0", "--rules", str(rules_file), "--json"], env)
    new, old = digests(settings, "1.1.0", "1.0.0")
    since = dt.datetime.now(dt.UTC)
    push = [SENTRYCTL, "defence", "push", "1.1.0", "--client", CLIENT, "--dwell", f"{args.dwell}s", "--yes", "--json"]
    push_wall, _ = timed(push, env)
    pack_95 = to_95(first_reports(settings, "pack_digest", new, since), names, since, "the pack")
    since = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    timed([SENTRYCTL, "defence", "revert", "--client", CLIENT, "--yes", "--json"], env)
    wait_for(
        "every host back on the previous pack",
        lambda: set(first_reports(settings, "pack_digest", old, since)) >= set(names),
        120,
        0.2,
    )
    return {
        "to_95_percent_seconds": round(pack_95, 2),
        "push_wall_seconds": round(push_wall, 2),
        "kill_switch_seconds": round(time.monotonic() - started, 2),
    }


def release_lane(settings: Settings, env: dict[str, str], names: list[str], rules_file: Path) -> dict[str, Any]:
    """The same rule change as an agent release through ``rollout start``."""
    build_release(project_root() / "agent", settings.home, version="1.0.1", rules_file=rules_file)
    since = dt.datetime.now(dt.UTC)
    wall, _ = timed([SENTRYCTL, "rollout", "start", "1.0.1", "--client", CLIENT, "--yes", "--json"], env)
    # The restarted agent's start heartbeat names its version; it is shipped within the ship interval.
    wait_for(
        "every host's heartbeat from the release",
        lambda: set(first_reports(settings, "version", "1.0.1", since)) >= set(names),
        60,
        0.2,
    )
    reached = to_95(first_reports(settings, "version", "1.0.1", since), names, since, "the release")
    return {"to_95_percent_seconds": round(reached, 2), "rollout_wall_seconds": round(wall, 2)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-defence-"))
    settings = Settings.from_env(home=root / "home", inventories=root / "inventories")
    lab = Lab(settings, "bd")
    collector: subprocess.Popen[bytes] | None = None
    try:
        names = setup(args, settings, lab)
        env = {**os.environ, "SENTRY_HOME": str(settings.home), "SENTRY_INVENTORIES": str(settings.inventories)}
        collector = subprocess.Popen([SENTRYCTL, "collector", "serve"], env=env, stderr=subprocess.DEVNULL)

        def online() -> bool:
            with Ledger.open(settings.db_url, settings.home) as ledger:
                return {hb.host for hb in ledger.latest_heartbeats(CLIENT)} >= set(names)

        wait_for("every host's first heartbeat", online, 120, 0.2)
        release_rules = json.loads((project_root() / "agent" / "rules" / "rules.json").read_text())
        rules_file = root / "rules.json"
        rules_file.write_text(json.dumps({"version": "bench-rules-2", "rules": [*release_rules["rules"], NEW_RULE]}))
        pack = pack_lane(args, settings, env, names, rules_file)
        release = release_lane(settings, env, names, rules_file)
        goal = args.dwell + 30
        return {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "hosts": args.hosts,
            "dwell_seconds": args.dwell,
            "pack": pack,
            "release": release,
            "ratio_pack_to_release_95": round(pack["to_95_percent_seconds"] / release["to_95_percent_seconds"], 3),
            "goal_95_within_seconds": goal,
            "goal_95_met": pack["to_95_percent_seconds"] <= goal,
            "kill_switch_goal_met": pack["kill_switch_seconds"] <= 60,
        }
    finally:
        process.stop(collector)  # SIGTERM, then killed past its grace time
        lab.down(lambda m: None)
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=False)


def table(result: dict[str, Any]) -> str:
    pack, release = result["pack"], result["release"]
    return "\n".join(
        [
            f"| {result['hosts']} hosts, dwell/soak {result['dwell_seconds']} s | to 95 % of hosts | command |",
            "| --- | --- | --- |",
            f"| defence push (pack) | {pack['to_95_percent_seconds']} s | {pack['push_wall_seconds']} s |",
            f"| rollout start (release) | {release['to_95_percent_seconds']} s | {release['rollout_wall_seconds']} s |",
            f"| ratio pack / release | {result['ratio_pack_to_release_95']} | |",
            f"| goal: 95 % within dwell + 30 s = {result['goal_95_within_seconds']} s | "
            f"{'met' if result['goal_95_met'] else 'MISSED'} | |",
            f"| kill switch: every host back | {pack['kill_switch_seconds']} s (goal 60 s) | |",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.defence", description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=4, help="lab hosts of the one client (2..20)")
    parser.add_argument("--dwell", type=int, default=30, help="canary dwell of the pack = soak of the release, s")
    parser.add_argument("--subnet", default=os.environ.get("SENTRY_TEST_SUBNET"), help="the lab's /24")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    if not 2 <= args.hosts <= 20:
        parser.error("--hosts 2..20")
    if not 0 <= args.dwell <= 3600:
        parser.error("--dwell 0..3600")
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "defence.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
