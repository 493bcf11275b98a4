"""The commands the benchmark measures: sentryctl's, bare ansible-playbook's with sentryctl's exact Ansible
settings, and the SSH floor."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator import inventory, provision
from orchestrator.paths import link_collection
from orchestrator.runner import ENV_ALLOW, build_config, run_extravars
from orchestrator.settings import Settings

VENV_BIN = Path(sys.executable).parent
# Set by ansible-runner for its own machinery (the event callback, its artifacts, its fact cache): what
# sentryctl adds on top of Ansible, so the bare run leaves them out.
RUNNER_ONLY = frozenset(
    {
        "ANSIBLE_CALLBACK_PLUGINS",
        "ANSIBLE_STDOUT_CALLBACK",
        "AWX_ISOLATED_DATA_DIR",
        "ANSIBLE_CACHE_PLUGIN",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION",
        "RUNNER_OMIT_EVENTS",
        "RUNNER_ONLY_FAILED_EVENTS",
        "PYTHONPATH",
    }
)


def sentryctl_env(settings: Settings, lab_cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SENTRY_HOME": str(settings.home),
        "SENTRY_INVENTORIES": str(settings.inventories),
        "SENTRY_LAB_CACHE": str(lab_cache),
        "COLUMNS": "160",
    }


def sentryctl(*args: str) -> list[str]:
    return [str(VENV_BIN / "sentryctl"), *args]


def bare_site_command(settings: Settings, client: str, run_id: str) -> tuple[list[str], dict[str, str]]:
    """``ansible-playbook`` for the site playbook exactly as sentryctl's runner would start it (inventory, extra
    vars, forks, the environment that carries every Ansible setting) minus ansible-runner's own callback and fact
    cache. Prepares the run folder (config file, temp dir, extra-vars file) like the runner does."""
    inv = inventory.load(settings.inventories, client)
    bundle = provision.dev_bundle(settings)
    # Provision runs site.yml once per release group, limited to that group's hosts: on a fresh client, all of them.
    request = provision.site_request(settings, inv, bundle, limit=",".join(sorted(h.name for h in inv.hosts)))
    config = build_config(request, settings, run_id)
    run_dir = Path(config["private_data_dir"])
    (run_dir / "tmp").mkdir(parents=True, exist_ok=True, mode=0o700)
    (run_dir / "ansible.cfg").write_text("# settings come from the environment\n")
    link_collection(settings.home)
    argv = ["ansible-playbook", "-i", config["inventory"]]
    if config.get("limit"):  # where ansible-runner puts it
        argv += ["--limit", config["limit"]]
    vars_file = Path(config["extravars"])
    vars_file.write_text(json.dumps(run_extravars(request, settings), sort_keys=True))
    vars_file.chmod(0o600)
    argv += ["-e", f"@{vars_file}"]
    if config.get("cmdline"):
        argv += shlex.split(config["cmdline"])
    if config.get("tags"):
        argv += ["--tags", config["tags"]]
    argv += ["--forks", str(config["forks"]), config["playbook"]]
    env = {k: v for k, v in os.environ.items() if ENV_ALLOW.match(k) and not k.startswith(("ANSIBLE_", "RUNNER_"))}
    env.update(config["envvars"])
    return argv, env


def _normalise(text: str, run_dir: str) -> str:
    return text.replace(run_dir, "<run>")


def settings_differences(
    bare_argv: Sequence[str],
    bare_env: Mapping[str, str],
    bare_run_dir: str,
    runner_command: Mapping[str, Any],
    runner_run_dir: str,
) -> list[str]:
    """How the bare command differs from what ansible-runner actually ran (its ``command`` artifact), with each
    run's own folder written as <run> and ansible-runner's own machinery set aside. Empty: the same settings."""
    diffs: list[str] = []
    theirs = [_normalise(a, runner_run_dir) for a in runner_command["command"]]
    ours = [_normalise(a, bare_run_dir) for a in bare_argv]
    if theirs != ours:
        diffs.append(f"argv: runner {theirs} != bare {ours}")
    runner_env = {
        k: _normalise(v, runner_run_dir)
        for k, v in runner_command["env"].items()
        if k.startswith("ANSIBLE_") and k not in RUNNER_ONLY
    }
    bare = {k: _normalise(v, bare_run_dir) for k, v in bare_env.items() if k.startswith("ANSIBLE_")}
    for key in sorted(set(runner_env) | set(bare)):
        if runner_env.get(key) != bare.get(key):
            diffs.append(f"{key}: runner {runner_env.get(key)!r} != bare {bare.get(key)!r}")
    return diffs


def ssh_floor_script(ssh_argvs: Sequence[Sequence[str]]) -> list[str]:
    """``sh -c`` running ``ssh ... true`` to every host at once; fails if any of them failed."""
    lines = ['pids=""']
    for argv in ssh_argvs:
        lines.append(f'{shlex.join([*argv, "true"])} & pids="$pids $!"')
    lines.append('rc=0; for p in $pids; do wait "$p" || rc=1; done; exit $rc')
    return ["sh", "-c", "\n".join(lines)]
