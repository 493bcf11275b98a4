"""The Ansible settings of every run: what to run (:class:`RunRequest`), the allowlisted environment, how hosts
are connected to (strict host keys, the shared SSH masters), and the keyword arguments for runner's config.

Pure: nothing here starts a process or touches ansible_runner, so it can be unit-tested; :mod:`.runner` runs it.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import secrets
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import sshmux
from .inventory import Inventory
from .paths import collections_path
from .settings import Settings

# Variables of this process that ansible-playbook may see; everything else (database URLs, tokens) stays out.
ENV_ALLOW = re.compile(
    r"^(ANSIBLE_|AWX_|RUNNER_|ORIGINAL_STDOUT_CALLBACK$|PYTHONPATH$|PATH$|HOME$|LANG$|LC_|TERM$|USER$|LOGNAME$|TZ$|TMPDIR$|SSH_AUTH_SOCK$)"
)
LABEL_RE = re.compile(r"[^a-z0-9]+")


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


def limit_for(hosts: Sequence[str]) -> str:
    return ",".join(hosts)
