"""The demo: the whole story of sentryctl on the local lab, told through the same core API the commands use.

Two clients of different tiers on four lab hosts: ``acme`` (professional, three hosts) and ``nightowl``
(enterprise, 24/7, one host). Their keys are pinned, every host is preflighted and provisioned; a signed
hotfix goes canary -> waves with gates; a deliberately broken hotfix halts at the canary and is rolled back
automatically; a feature release reaches only the client whose on-site training was signed off; an attack on
one host gets its source banned; both clients are audited and their evidence bundles written.

Everything happens in a workspace of its own (``<home>/demo`` by default: its own ledger, inventories,
release catalog and lab), so the demo never touches real clients or the real ledger. The workspace is wiped
when the next demo starts; the lab is removed at the end unless ``keep``. Progress goes through a callback
(:class:`DemoEvent`), so the core prints nothing.

Each step checks what it claims (versions on hosts, the ban, untouched hosts) and raises :class:`DemoError`
when the world disagrees, so the demo doubles as an end-to-end check.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from . import clients, pins, preflight, provision, releases, remote, training
from .audit import run_audit
from .demo_telemetry import DemoCollector, wait_alert, wait_state
from .errors import OrchestratorError
from .inventory import Inventory
from .lab import system
from .lab.manager import Lab
from .lab.state import LabState
from .ledger import Ledger
from .paths import project_root
from .releases import signing
from .rollout import service
from .rollout.execute import RolloutEvent, RolloutHalted
from .rollout.probe import wait_healthy
from .runner import Cancellation, RunEvent
from .settings import Settings
from .tiers import get_tier

log = logging.getLogger(__name__)

MARKER = ".sentry-demo"  # marks a folder as a demo workspace, so only such a folder is ever wiped
LAB_HOSTS = 4
DEFAULT_LAB = "demo"
HOTFIX, BROKEN, FEATURE = "1.0.1", "1.0.2", "1.1.0"
TRAINING_MODULE = "ops-dashboard-101"
TRAINER = "Lea Trainer"
ATTACKER = "198.51.100.77"  # TEST-NET-2: never a real address
GAME_LOG = "/var/log/sentry-game/login.log"
BAN_TIMEOUT = 20.0

# The demo's tracks: the shipped gates, without the soak between waves (the real tracks wait 20-60 s after each
# wave; a demo has an audience), and the feature release in two waves. A broken agent fails its health wait in
# 12 s, not 60.
HOTFIX_WAVES = [
    {"name": "canary", "hosts_per_client": 1},
    {"name": "early", "percent": 50},
    {"name": "rest", "percent": 100},
]
FEATURE_WAVES = [{"name": "canary", "hosts_per_client": 1}, {"name": "rest", "percent": 100}]
DEMO_TRACKS: dict[str, Any] = {
    "hotfix": {"waves": HOTFIX_WAVES, "soak_seconds": 0, "health_timeout_seconds": 30},
    "feature": {"waves": FEATURE_WAVES, "soak_seconds": 0, "health_timeout_seconds": 30},
}
DEMO_GROUP_VARS = "sentry_agent_health_retries: 6\nsentry_agent_health_delay: 2\n"


@dataclass(frozen=True)
class DemoClient:
    name: str
    tier: str
    hosts: tuple[str, ...]  # host names in the client's inventory, in lab order
    contact: str
    window: str = "always"


CLIENTS = (
    DemoClient("acme", "professional", ("game-1", "game-2", "game-3"), "Ana Ops <ana@acme.example>"),
    DemoClient("nightowl", "enterprise", ("arena-1",), "Nico Night <nico@nightowl.example>"),
)

STEPS: tuple[tuple[str, str], ...] = (
    ("lab", f"Bring up {LAB_HOSTS} lab hosts"),
    ("onboard", "Onboard two clients of different tiers"),
    ("pin", "Pin every host's SSH key"),
    ("preflight", "Preflight every host"),
    ("collector", "Start Sentry's collector on the lab bridge address"),
    ("provision", "Provision the protection stack (every agent wired to the collector)"),
    ("hotfix", f"Ship signed hotfix {HOTFIX}: canary, then waves, with gates"),
    ("broken", f"Ship a broken hotfix {BROKEN}: the canary gate fails, automatic rollback"),
    ("feature", f"Feature release {FEATURE}: only the client trained on site gets it"),
    ("attack", "Simulate an attack on one host"),
    ("audit", "Audit both clients and write the evidence bundles"),
    ("telemetry", "The agents report home: the attack's alert, a host turning silent"),
)

EventKind = Literal["step", "info", "ok", "warn", "status", "done"]


@dataclass(frozen=True)
class DemoEvent:
    """One line of the story. ``step`` starts step ``index`` (1-based) of ``total``; ``done`` ends it; ``status``
    is transient (what runs right now, e.g. the current task), the others are lines to keep."""

    kind: EventKind
    message: str
    step: str | None = None
    index: int = 0
    total: int = len(STEPS)
    seconds: float | None = None


Progress = Callable[[DemoEvent], None]


class DemoError(OrchestratorError):
    """Raised when a demo step fails or finds the world other than the story says."""


@dataclass
class StepTiming:
    step: str
    title: str
    seconds: float


@dataclass
class DemoReport:
    workspace: Path
    lab: str
    kept: bool
    total_seconds: float = 0.0
    steps: list[StepTiming] = field(default_factory=list)
    locations: dict[str, str] = field(default_factory=dict)
    audits: dict[str, dict[str, Any]] = field(default_factory=dict)
    explore: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace": str(self.workspace),
            "lab": self.lab,
            "kept": self.kept,
            "total_seconds": round(self.total_seconds, 1),
            "steps": [{"step": s.step, "title": s.title, "seconds": round(s.seconds, 1)} for s in self.steps],
            "locations": self.locations,
            "audits": self.audits,
            "explore": self.explore,
        }


# ---------------------------------------------------------------------------------------------- workspace
def workspace_settings(settings: Settings, workdir: Path | None = None) -> Settings:
    """The demo's own state: ledger (always SQLite), inventories, releases and lab under the workspace."""
    root = (workdir or settings.home / "demo").expanduser().resolve()
    return Settings(home=root, inventories=root / "inventories", verbosity=settings.verbosity, db_url=None)


def _demo_labs(ws: Settings) -> list[str]:
    return sorted(d.name for d in ws.lab_dir.iterdir() if d.is_dir()) if ws.lab_dir.is_dir() else []


def down(settings: Settings, say: Callable[[str], None], workdir: Path | None = None) -> bool:
    """Remove every lab a demo workspace holds (a kept demo); files stay. False when there was none."""
    ws = workspace_settings(settings, workdir)
    labs = _demo_labs(ws)
    for name in labs:
        Lab(ws, name).down(say)
    return bool(labs)


def prepare_workspace(settings: Settings, ws: Settings, say: Callable[[str], None]) -> None:
    """Start from a clean workspace: remove an earlier demo's labs and files, then share the lab image cache."""
    root = ws.home
    if root.exists():
        if not (root / MARKER).exists() and any(root.iterdir()):
            raise DemoError(
                f"{root} exists and is not a demo workspace; the demo only ever wipes its own",
                hint="pass another --workdir, or empty that folder",
            )
        for name in _demo_labs(ws):
            say(f"removing lab {name} left by an earlier demo")
            Lab(ws, name).down(say)
        shutil.rmtree(root)
    root.mkdir(parents=True, mode=0o700)
    (root / MARKER).write_text("A sentryctl demo workspace: wiped by the next 'sentryctl demo'.\n")
    # Without SENTRY_LAB_CACHE the cache is <home>/cache: point the workspace's at the caller's, so the base
    # image (a minute to build) is shared rather than built again.
    if "SENTRY_LAB_CACHE" not in os.environ:
        settings.lab_cache.mkdir(parents=True, exist_ok=True)
        (root / "cache").symlink_to(settings.lab_cache, target_is_directory=True)


# ---------------------------------------------------------------------------------------------- the story
class Demo:
    def __init__(self, settings: Settings, ws: Settings, lab_name: str, on_progress: Progress) -> None:
        self.settings = settings
        self.ws = ws
        self.lab = Lab(ws, lab_name)
        self.emit = on_progress
        self.report = DemoReport(workspace=ws.home, lab=lab_name, kept=False)
        self._step = ("", "", 0)
        self.invs: dict[str, Inventory] = {}
        self.host_map: dict[str, tuple[str, str]] = {}  # "client/host" -> (lab host name, address)

    # ---- output helpers ------------------------------------------------------------------------
    def say(self, message: str, kind: EventKind = "info") -> None:
        name, _title, index = self._step
        self.emit(DemoEvent(kind, message, name or None, index))

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        index = next(i for i, (n, _) in enumerate(STEPS, 1) if n == name)
        title = STEPS[index - 1][1]
        self._step = (name, title, index)
        self.emit(DemoEvent("step", title, name, index))
        start = time.monotonic()
        try:
            yield
        except DemoError:
            raise
        except OrchestratorError as exc:
            raise DemoError(f"demo step {index} ({title}) failed: {exc.message}", hint=exc.hint) from exc
        seconds = time.monotonic() - start
        self.report.steps.append(StepTiming(name, title, seconds))
        self.emit(DemoEvent("done", title, name, index, seconds=seconds))

    def _status(self, prefix: str) -> Callable[[str], None]:
        return lambda message: self.say(f"{prefix}: {message}", "status")

    def rollout_event(self, event: RolloutEvent) -> None:
        where = "/".join(x for x in (event.client, event.host) if x)
        self.say(f"{where}: {event.message}" if where else event.message, "info" if event.ok else "warn")

    # ---- steps -----------------------------------------------------------------------------------
    def up(self) -> LabState:
        with self.step("lab"):
            state = self.lab.up(LAB_HOSTS, self.say)
        return state

    def onboard(self, state: LabState, ledger: Ledger) -> None:
        with self.step("onboard"):
            lab_hosts = list(state.hosts.values())
            signing.keygen(self.ws.home, ledger=ledger)
            self.say("release signing key created (ed25519)")
            taken = 0
            for c in CLIENTS:
                mine = lab_hosts[taken : taken + len(c.hosts)]
                taken += len(c.hosts)
                spec = clients.build_spec(
                    name=c.name,
                    tier=c.tier,
                    hosts=[f"{n}={h.address}" for n, h in zip(c.hosts, mine, strict=True)],
                    mgmt_networks=[state.subnet],
                    window_text=c.window,
                    key_file=str(self.lab.key),
                    game_ports=["7777", "27015/udp"],
                    contacts=[c.contact],
                )
                inv = clients.create(self.ws, spec, ledger)
                (inv.path / "tracks.yml").write_text(yaml.safe_dump(DEMO_TRACKS, sort_keys=False))
                group_vars = inv.path / "group_vars" / "all.yml"
                group_vars.write_text(
                    group_vars.read_text() + "# demo: a broken agent fails in 12 s\n" + DEMO_GROUP_VARS
                )
                self.invs[c.name] = inv
                for n, h in zip(c.hosts, mine, strict=True):
                    self.host_map[f"{c.name}/{n}"] = (h.name, h.address)
                tier = get_tier(c.tier)
                self.say(
                    f"{c.name}: {c.tier} tier ({', '.join(tier.components)}; support {tier.support_hours}), "
                    f"{len(c.hosts)} host(s): "
                    + ", ".join(f"{n}={h.address}" for n, h in zip(c.hosts, mine, strict=True)),
                    "ok",
                )
            self.say(f"inventories rendered under {self.ws.inventories}")

    def pin(self, ledger: Ledger) -> None:
        with self.step("pin"):
            for name, inv in self.invs.items():
                scanned = pins.scan(inv, inv.hosts)
                pins.apply(inv, scanned, ledger)
                for row in scanned.rows:
                    fp = row.key.fingerprint if row.key else "?"
                    self.say(f"{name}/{row.host} {row.address}: {fp} ({row.state})")
            self.say("every SSH client (paramiko, Ansible, testinfra) now checks strictly against these keys", "ok")

    def preflight(self) -> None:
        with self.step("preflight"):
            for name, inv in self.invs.items():
                report = preflight.preflight(inv)
                for h in report.hosts:
                    if h.ok:
                        facts = "; ".join(c.detail for c in h.checks if c.id in ("python", "os", "disk"))
                        self.say(f"{name}/{h.host}: ok in {h.seconds:.1f}s ({facts})", "ok")
                    else:
                        bad = h.error or "; ".join(c.detail for c in h.checks if not c.ok)
                        self.say(f"{name}/{h.host}: {bad}", "warn")
                if not report.ok:
                    raise DemoError(f"preflight failed on {name}: {', '.join(report.failed)}")

    def provision(self, ledger: Ledger) -> None:
        with self.step("provision"):
            done: dict[str, int] = dict.fromkeys(self.invs, 0)

            def watcher(client: str) -> Callable[[RunEvent], None]:
                def on_event(event: RunEvent) -> None:
                    if event.kind == "task_start":
                        self.say(f"{client}: {event.task}", "status")
                    elif event.kind in ("ok", "changed", "skipped"):
                        done[client] += 1
                    elif event.kind in ("failed", "unreachable"):
                        self.say(
                            f"{client}/{event.host}: {event.kind} at {event.task}: {(event.message or '')[:160]}",
                            "warn",
                        )

                return on_event

            # Both clients at once (two runs, each recorded in the ledger under its own id): a one-host run waits
            # on the network most of the time, so it costs little beside the three-host one.
            cancels = {name: Cancellation() for name in self.invs}
            with ThreadPoolExecutor(max_workers=len(self.invs)) as pool:
                futures = {}
                for name, inv in self.invs.items():
                    self.say(f"{name}: preflight, then site.yml on {len(inv.hosts)} host(s) for the {inv.tier} tier")
                    futures[name] = pool.submit(
                        provision.provision, self.ws, name, ledger, on_event=watcher(name), cancel=cancels[name]
                    )
                try:
                    outcomes = {name: f.result() for name, f in futures.items()}
                except BaseException:  # Ctrl-C, or the other run failed: stop both runs now, not when they end
                    for cancel in cancels.values():
                        cancel.request(force=True)
                    raise
            for name, outcome in outcomes.items():
                run = outcome.run
                if run is None or not outcome.ok:
                    where = f"see {run.artifact_dir / 'stdout'}" if run else "preflight failed"
                    raise DemoError(f"provisioning {name} failed", hint=where)
                changed = sum(o.changed for o in run.hosts.values())
                self.say(
                    f"{name}: {len(run.hosts)} host(s) converged, {changed} change(s) in {done[name]} task results, "
                    f"agent {outcome.bundle.version}; recorded as run {run.run_id}",
                    "ok",
                )

    def _build(self, version: str, *, ledger: Ledger, **kw: Any) -> releases.Release:
        release = releases.build_release(project_root() / "agent", self.ws.home, version=version, ledger=ledger, **kw)
        self.say(
            f"built {version} ({release.track}): {release.bundle.name}, sha256 {release.sha256[:16]}..., "
            f"signed by {release.signed_by}"
        )
        return release

    def _plan(self, ledger: Ledger, version: str) -> None:
        _, p, _ = service.make_plan(self.ws, ledger, version, list(self.invs))
        for w in p.waves:
            self.say(f"plan: wave {w.index} {w.name}: {', '.join(f'{h.client}/{h.host}' for h in w.hosts)}")
        for wait in p.waiting:
            until = f" (session booked for {wait.until})" if wait.until else ""
            self.say(f"plan: {wait.client} waits: {wait.reason}{until}")
        self.say(f"plan: gates {', '.join(p.gates)}; a canary failure halts at once")

    def _running(self) -> dict[str, str | None]:
        """What each host's agent reports on /healthz right now (None when it does not answer healthy)."""
        out: dict[str, str | None] = {}
        for name, inv in self.invs.items():
            verdicts = wait_healthy(inv, inv.hosts, None, timeout=10, home=self.ws.home)
            for host, v in verdicts.items():
                out[f"{name}/{host}"] = v.version if v.healthy else None
        return out

    def _expect(self, what: str, want: dict[str, str], running: dict[str, str | None]) -> None:
        wrong = {k: running.get(k) for k, v in want.items() if running.get(k) != v}
        if wrong:
            detail = ", ".join(f"{k} runs {v or 'nothing healthy'} (expected {want[k]})" for k, v in wrong.items())
            raise DemoError(f"{what}: {detail}")

    def hotfix(self, ledger: Ledger) -> None:
        with self.step("hotfix"):
            self._build(HOTFIX, ledger=ledger, notes="Hotfix: faster detection of credential stuffing.")
            self._plan(ledger, HOTFIX)
            uid = service.start(self.ws, ledger, HOTFIX, list(self.invs), on_event=self.rollout_event)
            running = self._running()
            self._expect("after the hotfix", dict.fromkeys(self.host_map, HOTFIX), running)
            self.say(f"rollout {uid} completed: every host healthy on {HOTFIX}", "ok")

    def broken(self, ledger: Ledger) -> None:
        client = CLIENTS[0].name
        with self.step("broken"):
            rules = json.loads((project_root() / "agent" / "rules" / "rules.json").read_text())
            rules["self_test"] = "fail"  # the agent refuses to start with these rules: a bad release
            bad_rules = self.ws.home / "broken-rules.json"
            bad_rules.write_text(json.dumps(rules))
            self._build(BROKEN, ledger=ledger, rules_file=bad_rules, notes="A release whose agent cannot start.")
            self.say(f"rolling {BROKEN} out to {client}")
            try:
                service.start(self.ws, ledger, BROKEN, [client], on_event=self.rollout_event)
            except RolloutHalted as exc:
                self.say(f"halted as it should: {exc.message}", "ok")
            else:
                raise DemoError(f"the broken release {BROKEN} was not stopped by the canary gate")
            running = self._running()
            self._expect("after the rollback", dict.fromkeys(self.host_map, HOTFIX), running)
            record = ledger.rollouts(limit=1)[0]
            untouched = sorted(f"{h.client}/{h.host}" for h in record.hosts if h.status == "pending")
            self.say(
                f"rollout {record.uid} is {record.state}: every host healthy on {HOTFIX} again; later waves never "
                f"touched ({', '.join(untouched) or 'none'})",
                "ok",
            )

    def feature(self, ledger: Ledger) -> None:
        trained, waiting = CLIENTS[0].name, CLIENTS[1].name
        with self.step("feature"):
            self._build(
                FEATURE,
                ledger=ledger,
                track="feature",
                requires_training=TRAINING_MODULE,
                notes="Feature: the live detection dashboard.",
            )
            today = dt.datetime.now(dt.UTC).date()
            _, paths = training.schedule(self.ws, ledger, trained, FEATURE, date=today.isoformat(), trainer=TRAINER)
            self.say(f"{trained}: on-site training scheduled for today; packet: {paths[-1]}")
            training.signoff(
                self.ws, ledger, trained, FEATURE, trainer=TRAINER, attendees=[CLIENTS[0].contact.split(" <")[0]]
            )
            self.say(f"{trained}: training signed off by {TRAINER}", "ok")
            later = today + dt.timedelta(days=14)
            training.schedule(self.ws, ledger, waiting, FEATURE, date=later.isoformat(), trainer=TRAINER)
            self.say(f"{waiting}: training booked for {later.isoformat()}, not signed off yet")
            self._plan(ledger, FEATURE)
            uid = service.start(self.ws, ledger, FEATURE, list(self.invs), on_event=self.rollout_event)
            running = self._running()
            want = {k: FEATURE if k.startswith(f"{trained}/") else HOTFIX for k in self.host_map}
            self._expect("after the feature release", want, running)
            self.say(
                f"rollout {uid} completed: {trained} runs {FEATURE}; {waiting} stays on {HOTFIX} until its training",
                "ok",
            )

    def attack(self, state: LabState) -> None:
        client = CLIENTS[0]
        target_name = client.hosts[1]
        with self.step("attack"):
            inv = self.invs[client.name]
            host = inv.host(target_name)
            insider = str(ipaddress.IPv4Network(state.subnet).network_address + 250)
            burst = "".join(f"LOGIN FAILED user=player{i} ip={ip}\n" for i in range(12) for ip in (ATTACKER, insider))
            conn = remote.connect(inv, host)
            try:
                remote.run(conn, f"mkdir -p {Path(GAME_LOG).parent} && touch {GAME_LOG}")
                self.say(
                    f"{client.name}/{target_name}: 12 failed game logins each from {ATTACKER} (outside) "
                    f"and {insider} (Sentry's management network)"
                )
                remote.run(conn, f"cat >> {GAME_LOG} <<'EOF'\n{burst}EOF")
                start = time.monotonic()
                banned = ""
                while time.monotonic() - start < BAN_TIMEOUT and ATTACKER not in banned:
                    time.sleep(0.5)
                    banned = remote.run(conn, "nft list set inet sentry banned_v4").stdout
                took = time.monotonic() - start
                if ATTACKER not in banned:
                    raise DemoError(f"{ATTACKER} was not banned within {BAN_TIMEOUT:.0f}s on {target_name}")
                self.say(f"{ATTACKER} banned after {took:.1f}s (nftables set inet sentry banned_v4)", "ok")
                time.sleep(1.0)
                banned = remote.run(conn, "nft list set inet sentry banned_v4").stdout
                if insider in banned:
                    raise DemoError(f"the management address {insider} was banned on {target_name}")
                self.say(f"{insider} not banned: management networks never are", "ok")
                remote.run(
                    conn,
                    f"fail2ban-client unban {ATTACKER} >/dev/null 2>&1; "
                    f"nft delete element inet sentry banned_v4 '{{ {ATTACKER} }}' 2>/dev/null; true",
                )
                self.say("ban lifted again, so the audit sees the host as provisioned")
            finally:
                conn.close()

    def audit(self, ledger: Ledger) -> None:
        with self.step("audit"):
            out_dir = self.ws.home / "evidence"
            # Every testinfra check on every host; the check-mode converge (drift in anything the stack manages)
            # for nightowl only: on acme's three hosts it would add a minute to the demo.
            for c, converge in ((CLIENTS[0], False), (CLIENTS[1], True)):
                how = "testinfra checks and a check-mode converge" if converge else "testinfra checks"
                self.say(f"{c.name}: {how}")
                outcome = run_audit(
                    self.ws, c.name, ledger, out_dir=out_dir, converge_check=converge, on_progress=self._status(c.name)
                )
                hosts = ", ".join(
                    f"{h}: {r.status} ({sum(x.status == 'pass' for x in r.checks)} checks passed)"
                    for h, r in sorted(outcome.hosts.items())
                )
                self.report.audits[c.name] = {"status": outcome.status, "bundle": str(outcome.bundle)}
                self.say(f"{c.name}: {outcome.status}: {hosts}", "ok" if outcome.status == "compliant" else "warn")
                self.say(f"{c.name}: signed evidence bundle {outcome.bundle}")
                if outcome.status != "compliant":
                    raise DemoError(
                        f"the audit of {c.name} found {outcome.status}",
                        hint=f"see the evidence bundle {outcome.bundle}",
                    )

    def collector(self, state: LabState) -> DemoCollector:
        with self.step("collector"):
            collector = DemoCollector(self.ws, state)
            collector.start()
            self.say(f"collector listening on {collector.url} (TLS; agents pin its certificate)", "ok")
        return collector

    def telemetry(self, ledger: Ledger) -> None:
        client, target = CLIENTS[0].name, CLIENTS[0].hosts[1]
        with self.step("telemetry"):
            alert = wait_alert(ledger, client, target, ATTACKER, 30)
            self.say(f"{client}/{target}'s alert in fleet alerts: {alert.rule} {alert.ip} {alert.action}", "ok")
            dark = CLIENTS[1]
            host = dark.hosts[0]
            wait_state(ledger, dark.name, host, "online", 60)
            inv = self.invs[dark.name]
            conn = remote.connect(inv, inv.host(host))
            try:
                remote.run(conn, "systemctl stop sentry-agent")
                took = wait_state(ledger, dark.name, host, "silent", 3 * 15 + 5)
                self.say(
                    f"{dark.name}/{host}: agent stopped on purpose, silent in fleet status after {took:.1f}s", "ok"
                )
            finally:
                remote.run(conn, "systemctl start sentry-agent")
                conn.close()

    # ---- the end ---------------------------------------------------------------------------------
    def locations(self, keep: bool) -> None:
        ws = self.ws
        self.report.locations = {
            "workspace": str(ws.home),
            "ledger": str(ws.home / "ledger.db"),
            "inventories": str(ws.inventories),
            "release catalog": str(releases.catalog_dir(ws.home)),
            "training packets": str(ws.home / "training"),
            "evidence bundles": str(ws.home / "evidence"),
            "run artifacts": str(ws.runs_dir),
        }
        env = f"SENTRY_HOME={ws.home} SENTRY_INVENTORIES={ws.inventories}"
        self.report.explore = [
            f"{env} sentryctl ledger log --client acme",
            f"{env} sentryctl rollout status",
            f"{env} sentryctl client show nightowl",
            *(f"{env} sentryctl audit verify {a['bundle']}" for a in self.report.audits.values()),
        ]
        if keep:
            host = f"{self.lab.name}-2"
            self.report.explore.append(
                f"{env} sentryctl lab ssh --name {self.lab.name} {host} journalctl -u sentry-agent"
            )


def run_demo(
    settings: Settings,
    *,
    lab_name: str = DEFAULT_LAB,
    keep: bool = False,
    workdir: Path | None = None,
    on_progress: Progress | None = None,
) -> DemoReport:
    """Tell the whole story on a fresh lab; the lab is removed at the end (also on failure) unless ``keep``."""
    emit: Progress = on_progress or (lambda _e: None)
    system.require_root()  # before the workspace is touched
    system.require_tools()
    ws = workspace_settings(settings, workdir)
    started = time.monotonic()
    prepare_workspace(settings, ws, lambda m: emit(DemoEvent("info", m)))
    demo = Demo(settings, ws, lab_name, emit)
    demo.report.kept = keep
    collector: DemoCollector | None = None
    try:
        state = demo.up()
        with Ledger.open(None, ws.home) as ledger:
            demo.onboard(state, ledger)
            demo.pin(ledger)
            demo.preflight()
            collector = demo.collector(state)
            demo.provision(ledger)
            demo.hotfix(ledger)
            demo.broken(ledger)
            demo.feature(ledger)
            demo.attack(state)
            demo.audit(ledger)
            demo.telemetry(ledger)
            if not ledger.verify().ok:
                raise DemoError("the ledger's hash chain does not verify", hint=f"sentryctl ledger verify ({ws.home})")
        demo.locations(keep)
    finally:
        if collector is not None:
            collector.stop()
        if not keep:
            demo.lab.down(lambda m: emit(DemoEvent("info", m)))
        demo.report.total_seconds = time.monotonic() - started
    return demo.report


__all__ = ["CLIENTS", "STEPS", "DemoError", "DemoEvent", "DemoReport", "down", "run_demo", "workspace_settings"]
