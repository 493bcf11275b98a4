"""The lab delivers real, isolated hosts reached with pinned keys, and takes every trace of them away."""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
import urllib.request
from pathlib import Path

import pytest

from orchestrator.errors import LabError
from orchestrator.lab import proc
from orchestrator.lab.manager import Lab
from orchestrator.settings import Settings

from .conftest import LabEnv

pytestmark = pytest.mark.lab


def test_hosts_boot_real_systemd(lab_env: LabEnv) -> None:
    for host in lab_env.hosts():
        out = lab_env.ssh(host, "systemctl is-system-running --wait; systemctl --failed --no-legend | wc -l; hostname")
        state, failed, hostname = out.split()
        assert state == "running", out
        assert failed == "0", out
        assert hostname == host.name


def test_strict_host_keys_accept_the_pinned_key(lab_env: LabEnv) -> None:
    inv = lab_env.inventory
    host = lab_env.hosts()[0]
    known = inv.known_hosts.read_text()
    assert host.host_key_pub in known
    assert lab_env.ssh(host, "echo ok").strip() == "ok"


def test_a_host_presenting_another_key_is_refused(lab_env: LabEnv, tmp_path: Path) -> None:
    first, second = lab_env.hosts()[:2]
    forged = tmp_path / "known_hosts"
    # Pin the second host's key under the first host's address: the first now presents an unknown key.
    forged.write_text(f"{first.address} {second.host_key_pub}\n")
    argv = [
        a if not a.startswith("UserKnownHostsFile=") else f"UserKnownHostsFile={forged}"
        for a in lab_env.lab.ssh_argv(first)
    ]
    proc_ = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30, check=False)
    assert proc_.returncode == 255
    assert "host key" in proc_.stderr.lower()


def test_hosts_are_isolated_from_each_other_and_the_machine(lab_env: LabEnv) -> None:
    first, second = lab_env.hosts()[:2]
    marker = f"/var/tmp/isolation-{secrets.token_hex(4)}"
    lab_env.ssh(first, f"echo here > {marker}")
    assert lab_env.ssh(second, f"test -e {marker} && echo present || echo absent").strip() == "absent"
    assert not Path(marker).exists()
    # Each host has its own network stack: only its own address on eth0, and no route off the bridge.
    addrs = lab_env.ssh(first, "ip -j -4 addr show dev eth0")
    assert [a["local"] for a in json.loads(addrs)[0]["addr_info"]] == [first.address]
    assert "default" not in lab_env.ssh(first, "ip route")


def test_two_hosts_serve_the_same_port_at_once(lab_env: LabEnv) -> None:
    first, second = lab_env.hosts()[:2]
    for h in (first, second):
        # A transient unit: real systemd runs it, and it is gone after the test.
        lab_env.ssh(h, "systemd-run --unit=sentry-test-http python3 -m http.server 8080 --directory /etc")
    try:
        for h in (first, second):
            probe = "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8080))'"
            lab_env.ssh(h, f"for i in $(seq 50); do {probe} 2>/dev/null && exit 0; sleep 0.1; done; exit 1")
            body = urllib.request.urlopen(f"http://{h.address}:8080/hostname", timeout=5).read().decode()
            assert body.strip() == h.name
    finally:
        for h in (first, second):
            lab_env.ssh(h, "systemctl stop sentry-test-http", check=False)


def test_up_again_is_idempotent(lab_env: LabEnv) -> None:
    before = {h.name: h.proc for h in lab_env.hosts()}
    lab_env.lab.up(len(before), lambda _m: None)
    after = {h.name: h.proc for h in lab_env.hosts()}
    assert after == before


def test_subnet_in_use_is_refused(lab_env: LabEnv) -> None:
    state = lab_env.lab.state()
    assert state is not None
    other = Lab(lab_env.settings, "clash")
    with pytest.raises(LabError, match="in use"):
        other.up(1, lambda _m: None, subnet=state.subnet)
    other.down(lambda _m: None)


def _leftovers(lab: Lab, recorded_pids: list[proc.ProcRef], subnet: str) -> list[str]:
    found: list[str] = []
    mounts = Path("/proc/self/mountinfo").read_text()
    if str(lab.dir) in mounts:
        found.append("mount")
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    if f"sentry-{lab.id}-" in netns:
        found.append("netns")
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True).stdout
    if f"sbr{lab.id}" in links or f"sv{lab.id}" in links:
        found.append("link")
    addrs = subprocess.run(["ip", "-4", "-br", "addr"], capture_output=True, text=True, check=True).stdout
    net = ipaddress.IPv4Network(subnet)
    if any(ipaddress.IPv4Address(w.split("/")[0]) in net for w in addrs.split() if "/" in w and w[0].isdigit()):
        found.append("address")
    found += [f"pid {r.pid}" for r in recorded_pids if proc.alive(r)]
    for d in proc.cgroup_dirs("sentry"):
        if d.is_dir() and any(d.glob(f"{lab.id}-*")):
            found.append(f"cgroup in {d}")
    if lab.dir.exists():
        found.append("lab dir")
    return found


def test_down_leaves_nothing_behind_and_is_safe_twice(tmp_path: Path, lab_cache: str) -> None:
    settings = Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv")
    lab = Lab(settings, "gone")
    state = lab.up(2, lambda _m: None)
    pids = [r for r in (h.proc_ref for h in state.hosts.values()) if r is not None]
    repo = proc.ProcRef.from_json(state.repo_proc)
    assert repo is not None and all(proc.alive(r) for r in [*pids, repo])
    assert (tmp_path / "inv/gone/hosts.yml").exists()
    assert lab.down(lambda _m: None) is True
    assert _leftovers(lab, [*pids, repo], state.subnet) == []
    assert not (tmp_path / "inv/gone").exists()
    assert lab.down(lambda _m: None) is False
