"""The lab delivers real, isolated hosts reached with pinned keys, and takes every trace of them away."""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orchestrator.errors import LabError
from orchestrator.lab import claims, net, proc
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


def _lab_up_cli(settings: Settings, name: str, subnet: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "orchestrator", "--home", str(settings.home), "--inventories"]
    argv += [str(settings.inventories), "lab", "up", "--name", name, "--hosts", "1", "--subnet", subnet]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_a_claimed_or_used_subnet_is_refused_in_one_line(lab_env: LabEnv, tmp_path: Path) -> None:
    state = lab_env.lab.state()
    assert state is not None
    assert str(state.network) in [str(c.subnet) for c in claims.held()]
    claimed = _lab_up_cli(lab_env.settings, "clash", state.subnet)
    assert claimed.returncode == 1, claimed.stderr
    assert claimed.stderr.count("\n") == 1 and f"claimed by lab {lab_env.lab.name}" in claimed.stderr
    # An address on the machine that no lab claimed (a bare bridge stands for anything else using it).
    free = claims.claim("probe", tmp_path / "probe", pool=ipaddress.IPv4Network("10.213.240.0/21"))
    claims.release(tmp_path / "probe")
    subprocess.run(["ip", "link", "add", "sdclash", "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{free.network_address + 5}/24", "dev", "sdclash"], check=True)
        used = _lab_up_cli(lab_env.settings, "clash", str(free))
        assert used.returncode == 1, used.stderr
        assert used.stderr.count("\n") == 1 and "in use on this machine" in used.stderr
        # And right before a bridge gets its address, even when the subnet was claimed before it was used.
        with pytest.raises(LabError, match="in use on this machine"):
            net.create_bridge("sbrclash", free)
        assert (
            "10.213"
            not in subprocess.run(
                ["ip", "-4", "addr", "show", "dev", "sbrclash"], capture_output=True, text=True, check=True
            ).stdout
        )
    finally:
        subprocess.run(["ip", "link", "del", "sdclash"], check=False)
        subprocess.run(["ip", "link", "del", "sbrclash"], check=False)
    assert "clash" not in [c.lab for c in claims.held()]
    Lab(lab_env.settings, "clash").down(lambda _m: None)


def test_labs_started_at_the_same_moment_get_distinct_subnets(
    tmp_path: Path, lab_cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Auto-picked from a pool of their own, so no other lab on this machine can take part in the race.
    monkeypatch.setattr(net, "AUTO_POOL", ipaddress.IPv4Network("10.213.240.0/21"))
    settings = Settings.from_env(home=tmp_path / "home", inventories=tmp_path / "inv")
    labs = [Lab(settings, f"side{i}") for i in range(3)]
    start = threading.Barrier(len(labs))

    def up(lab: Lab) -> str:
        start.wait(timeout=30)
        return lab.up(1, lambda _m: None).subnet

    try:
        with ThreadPoolExecutor(len(labs)) as pool:
            subnets = list(pool.map(up, labs))
        assert len(set(subnets)) == len(labs), subnets
        # Each lab's host answers with the key pinned for it on its own subnet.
        for lab in labs:
            state = lab.state()
            assert state is not None
            host = next(iter(state.hosts.values()))
            out = subprocess.run(
                [*lab.ssh_argv(host), "hostname"], capture_output=True, text=True, timeout=30, check=False
            )
            assert out.stdout.strip() == host.name, out.stderr
    finally:
        for lab in labs:
            lab.down(lambda _m: None)
    held = [str(c.subnet) for c in claims.held()]
    assert not set(subnets) & set(held), held


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
