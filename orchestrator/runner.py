"""The Ansible engine: the only module that imports ansible_runner.

A run gets its own private data directory under ``<home>/runs/<run id>``; its environment is built from an
allowlist (runner would otherwise copy every variable of this process into its ``command`` artifact); host
keys are always checked strictly against the client's ``known_hosts``; extra variables are passed as a file,
never on the command line. The result is data: status, rc, and per-host outcomes taken from the final stats.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import secrets
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import sshmux
from .errors import RunCancelled, RunnerError
from .inventory import Inventory
from .paths import collections_path, link_collection
from .settings import Settings, private_tree

log = logging.getLogger(__name__)

# Variables of this process that ansible-playbook may see; everything else (database URLs, tokens) stays out.
ENV_ALLOW = re.compile(
    r"^(ANSIBLE_|AWX_|RUNNER_|ORIGINAL_STDOUT_CALLBACK$|PYTHONPATH$|PATH$|HOME$|LANG$|LC_|TERM$|USER$|LOGNAME$|TZ$|TMPDIR$|SSH_AUTH_SOCK$)"
)
LABEL_RE = re.compile(r"[^a-z0-9]+")

HostStatus = Literal["ok", "changed", "failed", "unreachable"]


@dataclass(frozen=True)
class RunRequest:
    """What to run. Pure data: :func:`build_config` turns it into runner arguments without side effects."""

    playbook: Path
    inventory: Inventory
    label: str
    limit: str | None = None
    tags: tuple[str, ...] = ()
    skip_tags: tuple[str, ...] = ()
    extravars: Mapping[str, Any] = field(default_factory=dict)
    check: bool = False
    diff: bool = False
    forks: int = 10
    verbosity: int = 0
    timeout: int = 10  # SSH connect timeout, seconds
    # Every run is bounded twice: one task may take task_timeout seconds on a host (that host then fails, the others
    # go on); the whole run may take run_timeout seconds, then ansible-playbook and its SSH children are killed and
    # every host that had not finished is reported failed. The defaults fit a cold converge with package installs.
    task_timeout: int = 600
    run_timeout: int = 3600
    run_id: str | None = None  # given when the caller records the run elsewhere under the same id
    vault: tuple[Path, Path] | None = None  # (encrypted extra-vars file, vault password file)


@dataclass(frozen=True)
class HostOutcome:
    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    rescued: int = 0
    skipped: int = 0
    ignored: int = 0

    @property
    def status(self) -> HostStatus:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "changed" if self.changed else "ok"

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status}


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: str  # runner's: successful, failed, canceled, timeout (run_timeout passed; the run was killed)
    rc: int
    hosts: Mapping[str, HostOutcome]
    artifact_dir: Path
    stats_seen: bool

    @property
    def ok(self) -> bool:
        """True only when the run finished, reported its stats, and no host failed or was unreachable."""
        return (
            self.status == "successful"
            and self.rc == 0
            and self.stats_seen
            and all(h.status in ("ok", "changed") for h in self.hosts.values())
        )

    def by_status(self, status: HostStatus) -> list[str]:
        return sorted(h for h, o in self.hosts.items() if o.status == status)

    @property
    def changed_total(self) -> int:
        return sum(o.changed for o in self.hosts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "rc": self.rc,
            "ok": self.ok,
            "stats_seen": self.stats_seen,
            "artifact_dir": str(self.artifact_dir),
            "hosts": {h: o.to_json() for h, o in sorted(self.hosts.items())},
        }


@dataclass(frozen=True)
class RunEvent:
    """A simplified Ansible event, for live progress."""

    kind: str  # play_start, task_start, ok, changed, failed, unreachable, skipped, stats
    host: str | None = None
    task: str | None = None
    play: str | None = None
    message: str | None = None


EventCallback = Callable[[RunEvent], None]

_RESULT_KINDS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


def simplify_event(raw: Mapping[str, Any]) -> RunEvent | None:
    """Map one raw runner event to a :class:`RunEvent`, or None for events progress does not show."""
    name = raw.get("event")
    data: Mapping[str, Any] = raw.get("event_data") or {}
    if name == "playbook_on_play_start":
        return RunEvent("play_start", play=data.get("play"))
    if name == "playbook_on_task_start":
        return RunEvent("task_start", task=data.get("task"), play=data.get("play"))
    if name == "playbook_on_stats":
        return RunEvent("stats")
    if name in _RESULT_KINDS:
        kind = _RESULT_KINDS[name]
        res: Mapping[str, Any] = data.get("res") or {}
        if kind == "ok" and res.get("changed"):
            kind = "changed"
        if kind == "failed" and data.get("ignore_errors"):
            kind = "ok"
        message = res.get("msg") if kind in ("failed", "unreachable") else None
        return RunEvent(kind, host=data.get("host"), task=data.get("task"), play=data.get("play"), message=message)
    return None


def outcomes_from_stats(stats: Mapping[str, Any]) -> dict[str, HostOutcome]:
    """Per-host outcome from the ``playbook_on_stats`` event data: the final word, unlike raw failed events
    (a failure inside a block that was rescued is not a failed host)."""
    keys = {
        "ok": "ok",
        "changed": "changed",
        "failures": "failed",
        "dark": "unreachable",
        "rescued": "rescued",
        "skipped": "skipped",
        "ignored": "ignored",
    }
    counts: dict[str, dict[str, int]] = {}
    for stat_key, field_name in keys.items():
        for host, n in (stats.get(stat_key) or {}).items():
            counts.setdefault(host, {})[field_name] = int(n)
    for host in stats.get("processed") or {}:
        counts.setdefault(host, {})
    return {h: HostOutcome(host=h, **c) for h, c in counts.items()}


def unfinished_outcomes(seen: Mapping[str, Mapping[str, int]], targets: Sequence[str]) -> dict[str, HostOutcome]:
    """Per-host outcome of a run that never reported its stats (it was killed at its run timeout): what each host's
    events counted, and every host that had not already failed or been unreachable counted failed once more: the
    run did not finish on it."""
    out: dict[str, HostOutcome] = {}
    for host in dict.fromkeys([*targets, *seen]):
        counts = dict(seen.get(host, {}))
        if not counts.get("failed") and not counts.get("unreachable"):
            counts["failed"] = counts.get("failed", 0) + 1
        out[host] = HostOutcome(host=host, **counts)
    return out


def new_run_id(label: str, now: _dt.datetime | None = None) -> str:
    stamp = (now or _dt.datetime.now(_dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    slug = LABEL_RE.sub("-", label.lower()).strip("-")[:40] or "run"
    return f"{stamp}-{slug}-{secrets.token_hex(3)}"


def ssh_args(known_hosts: Path) -> str:
    return " ".join(
        [
            "-o ControlMaster=auto",
            "-o ControlPersist=60s",
            f"-o UserKnownHostsFile={shlex.quote(str(known_hosts))}",
            "-o GlobalKnownHostsFile=/dev/null",
            "-o StrictHostKeyChecking=yes",
            "-o IdentitiesOnly=yes",
            "-o ServerAliveInterval=15",
            "-o ServerAliveCountMax=3",
        ]
    )


def connection_vars(request: RunRequest, settings: Settings) -> dict[str, Any]:
    """How every run connects, as extra variables: the highest precedence Ansible has, so no inventory,
    group_vars or host_vars value can replace them (the inventory loader refuses such variables too)."""
    args = ssh_args(request.inventory.known_hosts)
    return {
        "ansible_connection": "ssh",
        "ansible_ssh_executable": "ssh",
        "ansible_ssh_args": args,
        "ansible_ssh_common_args": "",
        "ansible_ssh_extra_args": "",
        "ansible_host_key_checking": True,
        "ansible_ssh_host_key_checking": True,
        "ansible_pipelining": True,
        "ansible_ssh_pipelining": True,
        "ansible_control_path_dir": str(sshmux.masters_dir(settings.home, request.inventory.known_hosts)),
        "ansible_control_path": sshmux.ANSIBLE_CONTROL_PATH,
    }


def run_extravars(request: RunRequest, settings: Settings) -> dict[str, Any]:
    """What the run's extra-vars file holds: the caller's variables, then sentryctl's connection settings."""
    return {**request.extravars, **connection_vars(request, settings)}


def build_env(request: RunRequest, settings: Settings, run_dir: Path) -> dict[str, str]:
    """The Ansible settings of every run, as environment variables (nothing read from ansible.cfg files)."""
    known_hosts = request.inventory.known_hosts
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return {
        "PATH": path if bin_dir in path.split(os.pathsep) else f"{bin_dir}{os.pathsep}{path}",
        # An empty config of our own: no ansible.cfg from the cwd, the home folder or /etc can change a run.
        "ANSIBLE_CONFIG": str(run_dir / "ansible.cfg"),
        "ANSIBLE_HOME": str(settings.home / "ansible"),
        "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp"),
        # The roles are found by FQCN (sentry.stack.*) in a collections path holding only our collection.
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path(settings.home)),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
        "ANSIBLE_ROLES_PATH": str(run_dir / "no-roles"),
        # YAML only: the script plugin would execute an inventory file that has its executable bit set.
        "ANSIBLE_INVENTORY_ENABLED": "yaml",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": ssh_args(known_hosts),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(sshmux.masters_dir(settings.home, known_hosts)),
        "ANSIBLE_SSH_CONTROL_PATH": sshmux.ANSIBLE_CONTROL_PATH,
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_TIMEOUT": str(request.timeout),
        "ANSIBLE_TASK_TIMEOUT": str(request.task_timeout),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_FORCE_COLOR": "False",
        "ANSIBLE_SYSTEM_WARNINGS": "False",
        **({"ANSIBLE_VAULT_PASSWORD_FILE": str(request.vault[1])} if request.vault else {}),
    }


def build_config(request: RunRequest, settings: Settings, run_id: str) -> dict[str, Any]:
    """Keyword arguments for ``ansible_runner.RunnerConfig``: pure, so it can be unit-tested."""
    run_dir = settings.runs_dir / run_id
    cmdline: list[str] = []
    if request.check:
        cmdline.append("--check")
    if request.diff:
        cmdline.append("--diff")
    if request.skip_tags:
        cmdline += ["--skip-tags", ",".join(request.skip_tags)]
    if request.vault is not None:
        # Paths only: the encrypted file and the password file; ansible-playbook decrypts in memory.
        cmdline += ["-e", f"@{request.vault[0]}"]
    config: dict[str, Any] = {
        "private_data_dir": str(run_dir),
        "ident": run_id,
        "playbook": str(request.playbook.resolve()),
        "inventory": str(request.inventory.hosts_file),
        "envvars": build_env(request, settings, run_dir),
        "limit": request.limit,
        "tags": ",".join(request.tags) if request.tags else None,
        "forks": request.forks,
        "verbosity": request.verbosity,
        "quiet": True,
        "suppress_env_files": True,
        "cmdline": " ".join(shlex.quote(c) for c in cmdline) if cmdline else None,
        # Runner's job timeout: past it, it SIGKILLs ansible-playbook's process group and reports "timeout".
        "timeout": request.run_timeout,
        # How often runner polls our cancel callback; small so a cancel is honoured promptly.
        "settings": {"pexpect_timeout": 0.2, "suppress_ansible_output": True},
    }
    config["extravars"] = str(run_dir / "extravars.json")
    return config


class Cancellation:
    """Cancel between plays: a requested cancel takes effect when the current play has ended (the next play
    starts, or at once if no play has started). ``force`` stops at once."""

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._forced = threading.Event()
        self._at_boundary = threading.Event()
        self._boundary_seen = False

    def request(self, force: bool = False) -> None:
        self._requested.set()
        if force:
            self._forced.set()

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def observe(self, event: RunEvent) -> None:
        if event.kind == "play_start":
            self._boundary_seen = True
            if self._requested.is_set():
                self._at_boundary.set()

    def should_stop(self) -> bool:
        if self._forced.is_set():
            return True
        if not self._requested.is_set():
            return False
        return self._at_boundary.is_set() or not self._boundary_seen


def run_playbook(
    request: RunRequest,
    settings: Settings,
    on_event: EventCallback | None = None,
    cancel: Cancellation | None = None,
) -> RunResult:
    """Run a playbook and return its result; raises RunnerError if it cannot start, RunCancelled if cancelled."""
    import ansible_runner
    from ansible_runner.config.runner import RunnerConfig
    from ansible_runner.exceptions import AnsibleRunnerException

    if not request.inventory.known_hosts.exists():
        raise RunnerError(
            f"client {request.inventory.client} has no pinned host keys ({request.inventory.known_hosts})",
            hint=f"pin them first: 'sentryctl hosts pin --client {request.inventory.client}'",
        )
    run_id = request.run_id or new_run_id(request.label)
    config_kwargs = build_config(request, settings, run_id)
    run_dir = Path(config_kwargs["private_data_dir"])
    settings.runs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (run_dir / "tmp").mkdir(parents=True, mode=0o700)
    run_dir.chmod(0o700)
    (run_dir / "ansible.cfg").write_text("# settings come from the environment: see artifacts/*/command\n")
    sshmux.ensure_masters_dir(settings.home, request.inventory.known_hosts)
    (settings.home / "ansible").mkdir(parents=True, exist_ok=True, mode=0o700)
    link_collection(settings.home)
    vars_file = Path(config_kwargs["extravars"])
    vars_file.write_text(json.dumps(run_extravars(request, settings), sort_keys=True))
    vars_file.chmod(0o600)
    cancel = cancel or Cancellation()
    stats: dict[str, Any] | None = None
    seen: dict[str, dict[str, int]] = {}  # per-host event counts, the outcome of a run killed before its stats

    def handle(raw: dict[str, Any]) -> bool:
        nonlocal stats
        if raw.get("event") == "playbook_on_stats":
            stats = dict(raw.get("event_data") or {})
        event = simplify_event(raw)
        if event is not None:
            if event.host and event.kind in ("ok", "changed", "failed", "unreachable", "skipped"):
                tally = seen.setdefault(event.host, {})
                tally[event.kind] = tally.get(event.kind, 0) + 1
            cancel.observe(event)
            if on_event is not None:
                on_event(event)
        return True

    try:
        rc = RunnerConfig(**config_kwargs)
        rc.prepare()
        rc.env = {k: v for k, v in rc.env.items() if ENV_ALLOW.match(k)}
        runner = ansible_runner.Runner(
            config=rc,
            event_handler=handle,
            # Our own callback, always: without one, runner installs SIGINT/SIGTERM handlers over the caller's.
            cancel_callback=cancel.should_stop,
        )
        status, exit_code = runner.run()
    except (AnsibleRunnerException, OSError) as exc:
        raise RunnerError(f"could not run {request.playbook.name}: {exc}") from exc
    artifact_dir = Path(rc.artifact_dir)
    hosts = _final_outcomes(request, run_dir, str(status), stats, seen)
    result = RunResult(
        run_id=run_id,
        status=str(status),
        rc=int(exit_code if exit_code is not None else -1),
        hosts=hosts,
        artifact_dir=artifact_dir,
        stats_seen=stats is not None,
    )
    (run_dir / "result.json").write_text(json.dumps(result.to_json(), indent=2, sort_keys=True))
    private_tree(run_dir)  # runner writes its artifacts with the process umask
    log.info("run %s: %s rc=%s", run_id, result.status, result.rc)
    if result.status == "canceled":
        raise RunCancelled(f"run {run_id} was cancelled", hint=f"its artifacts are in {artifact_dir}")
    return result


def run_processes(run_dir: Path) -> list[int]:
    """Processes of a run: every one that carries its environment (its private temp dir), but SSH connection
    masters, which serve later runs too and end on their own (ControlPersist)."""
    marker = f"ANSIBLE_LOCAL_TEMP={run_dir / 'tmp'}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if marker in environ and b"[mux]" not in cmdline:
            found.append(int(entry))
    return found


def kill_leftovers(run_dir: Path) -> None:
    """Kill what a stopped run left running. Runner kills ansible-playbook's process group, but Ansible's workers
    and their ssh each run in a session of their own (setsid) and would go on waiting on a hung host."""
    for _ in range(3):  # a worker may fork an ssh while we kill: look again
        pids = run_processes(run_dir)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def _final_outcomes(
    request: RunRequest,
    run_dir: Path,
    status: str,
    stats: Mapping[str, Any] | None,
    seen: Mapping[str, Mapping[str, int]],
) -> dict[str, HostOutcome]:
    if status in ("timeout", "canceled"):
        kill_leftovers(run_dir)
    if stats is not None:
        return outcomes_from_stats(stats)
    if status == "timeout":
        log.warning("run %s passed its %ss run timeout and was killed", run_dir.name, request.run_timeout)
        return unfinished_outcomes(seen, [h.name for h in request.inventory.select(request.limit)])
    return {}


def tail_stdout(result: RunResult, lines: int = 40) -> str:
    """The end of the run's stdout, for error messages and test assertions."""
    path = result.artifact_dir / "stdout"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def limit_for(hosts: Sequence[str]) -> str:
    return ",".join(hosts)
