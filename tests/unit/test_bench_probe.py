"""The benchmark's parsers: sshd logins from journal text, cgroup CPU, process-tree memory, the comparison of the
bare command with what ansible-runner ran, the SSH floor script and the host-count option."""

from __future__ import annotations

import argparse
import subprocess

import pytest

from bench import commands, labprobe, main, measure

JOURNAL = """\
2026-11-23T18:00:01+0000 bn-1 sshd[101]: Server listening on 0.0.0.0 port 22.
2026-11-23T18:00:02+0000 bn-1 sshd[120]: Accepted publickey for root from 10.213.0.1 port 40000 ssh2: ED25519 SHA256:x
2026-11-23T18:00:02+0000 bn-1 sshd[120]: pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)
2026-11-23T18:00:03+0000 bn-2 sshd[130]: Accepted publickey for root from 10.213.0.1 port 40002 ssh2: ED25519 SHA256:x
2026-11-23T18:00:04+0000 bn-1 sshd[140]: Accepted publickey for root from 10.213.0.1 port 40004 ssh2: ED25519 SHA256:x
2026-11-23T18:00:05+0000 bn-2 sshd[150]: Failed publickey for root from 10.213.0.9 port 40006 ssh2
2026-11-23T18:00:06+0000 bn-2 sudo[160]: Accepted publickey for root (not sshd: ignored)
-- Boot 1234 --
"""


def test_logins_are_counted_per_host_from_sshd_accepted_lines_only() -> None:
    assert labprobe.count_logins(JOURNAL) == {"bn-1": 2, "bn-2": 1}
    assert labprobe.count_logins("") == {}


def test_cpu_seconds_come_from_usage_usec() -> None:
    text = "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
    assert labprobe.parse_cpu_stat(text) == 2.5
    assert labprobe.parse_cpu_stat("user_usec 1\n") == 0.0


def test_proc_stat_with_spaces_and_parens_in_the_name() -> None:
    stat = (
        "4242 (ansible-playbook (worker) x) S 4200 4242 4200 0 -1 4194560 "
        + " ".join(["0"] * 8)
        + " 20 0 1 0 5 6 777 0"
    )
    ppid, rss = measure.parse_stat(stat)
    assert ppid == 4200 and rss == 777


def test_tree_rss_sums_the_root_and_all_its_descendants_only() -> None:
    table = {10: (1, 100), 11: (10, 50), 12: (11, 25), 20: (1, 1000), 21: (20, 1000)}
    assert measure.tree_rss_kb(10, table) == 175 * measure.PAGE_KB
    assert measure.tree_rss_kb(99, table) == 0


def runner_command(run_dir: str) -> dict[str, object]:
    return {
        "command": ["ansible-playbook", "-i", "/inv/bn/hosts.yml", "-e", f"@{run_dir}/extravars.json", "--forks", "10",
                    "/p/site.yml"],
        "env": {
            "ANSIBLE_CONFIG": f"{run_dir}/ansible.cfg",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto",
            "ANSIBLE_STDOUT_CALLBACK": "awx_display",
            "ANSIBLE_CACHE_PLUGIN": "jsonfile",
            "PATH": "/bin",
        },
    }  # fmt: skip


def test_same_settings_when_only_the_run_folders_and_runners_machinery_differ() -> None:
    bare_argv = ["ansible-playbook", "-i", "/inv/bn/hosts.yml", "-e", "@/runs/b/extravars.json", "--forks", "10",
                 "/p/site.yml"]  # fmt: skip
    bare_env = {
        "ANSIBLE_CONFIG": "/runs/b/ansible.cfg",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto",
    }
    assert commands.settings_differences(bare_argv, bare_env, "/runs/b", runner_command("/runs/a"), "/runs/a") == []


def test_a_different_setting_or_argument_is_named() -> None:
    bare_argv = ["ansible-playbook", "-i", "/inv/bn/hosts.yml", "-e", "@/runs/b/extravars.json", "--forks", "5",
                 "/p/site.yml"]  # fmt: skip
    bare_env = {
        "ANSIBLE_CONFIG": "/runs/b/ansible.cfg",
        "ANSIBLE_PIPELINING": "False",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto",
    }
    diffs = commands.settings_differences(bare_argv, bare_env, "/runs/b", runner_command("/runs/a"), "/runs/a")
    assert len(diffs) == 2
    assert diffs[0].startswith("argv:") and "'5'" in diffs[0]
    assert diffs[1] == "ANSIBLE_PIPELINING: runner 'True' != bare 'False'"


def test_the_floor_script_runs_every_ssh_at_once_and_fails_if_one_fails() -> None:
    script = commands.ssh_floor_script([["sh", "-c", "exit 0", "x"], ["sh", "-c", "exit 3", "y"]])
    assert script[:2] == ["sh", "-c"] and script[2].count(" & ") == 2
    assert subprocess.run(script, check=False).returncode == 1
    ok = commands.ssh_floor_script([["sh", "-c", "exit 0", "x"], ["sh", "-c", "exit 0", "y"]])
    assert subprocess.run(ok, check=False).returncode == 0


def test_host_counts_are_a_comma_separated_list_within_the_labs_limit() -> None:
    assert main.host_counts("5,10,20,50") == [5, 10, 20, 50]
    assert main.host_counts("2") == [2]
    for bad in ("", "five", "0", "5,61", "5,,x"):
        with pytest.raises(argparse.ArgumentTypeError):
            main.host_counts(bad)
