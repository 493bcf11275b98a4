"""``sentryctl lab``: bring throwaway hosts up, report on them, and take every trace of them down again."""

from __future__ import annotations

import ipaddress
import logging
import shutil
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import LabError
from ..settings import Settings
from . import claims, image, machine, net, proc, system
from .state import HostState, LabState, lab_id, load, save, validate_name

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
REPO_PORT = 8780
BOOT_TIMEOUT = 90.0
MAX_HOSTS = 60
LAB_TIER = "professional"
LAB_MARKER = ".sentry-lab"  # marks an inventory folder as written by the lab, so only the lab removes it


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    running: bool
    ssh: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "running": self.running, "ssh": self.ssh}


class Lab:
    def __init__(self, settings: Settings, name: str = "lab") -> None:
        self.settings = settings
        self.name = validate_name(name)
        self.dir = settings.lab_dir / name
        self.id = lab_id(self.dir)
        self.state_file = self.dir / "state.json"
        self.key = self.dir / "id_ed25519"

    # ---- queries -------------------------------------------------------------------------------
    def state(self) -> LabState | None:
        return load(self.state_file)

    @property
    def inventory_dir(self) -> Path:
        return self.settings.inventories / self.name

    @property
    def known_hosts(self) -> Path:
        return self.inventory_dir / "known_hosts"

    def ssh_argv(self, host: HostState, *, interactive: bool = False) -> list[str]:
        argv = [
            "ssh",
            "-i",
            str(self.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
        ]
        if not interactive:
            argv += ["-o", "BatchMode=yes"]
        return [*argv, f"root@{host.address}"]

    def status(self) -> list[HostStatus]:
        state = self._require_state()
        with ThreadPoolExecutor(max_workers=8) as pool:
            ssh = list(pool.map(lambda h: machine.ssh_banner(h.address), state.hosts.values()))
        return [
            HostStatus(h.name, h.address, proc.alive(h.proc_ref), ok)
            for h, ok in zip(state.hosts.values(), ssh, strict=True)
        ]

    def host(self, name: str) -> HostState:
        state = self._require_state()
        if name not in state.hosts:
            raise LabError(f"lab {self.name} has no host {name!r}", hint=f"hosts: {', '.join(state.hosts)}")
        return state.hosts[name]

    def _require_state(self) -> LabState:
        state = self.state()
        if state is None:
            raise LabError(f"lab {self.name!r} is not up", hint=f"start it with 'sentryctl lab up --name {self.name}'")
        return state

    # ---- up ------------------------------------------------------------------------------------
    def up(self, hosts: int, progress: Progress, subnet: str | None = None) -> LabState:
        if not 1 <= hosts <= MAX_HOSTS:
            raise LabError(f"--hosts must be between 1 and {MAX_HOSTS}, not {hosts}")
        system.require_root()
        system.require_tools()
        self.dir.mkdir(parents=True, exist_ok=True)
        state = self.state()
        if state is None:
            state = self._create(progress, subnet)
        elif subnet and net.parse_subnet(subnet) != state.network:
            raise LabError(
                f"lab {self.name} already runs on {state.subnet}",
                hint=f"'sentryctl lab down --name {self.name}' first to move it to {subnet}",
            )
        else:  # a running lab keeps its claim; one made before claims existed gets it now, or is refused
            claims.claim(self.name, self.dir, state.network)
        if len(state.hosts) > hosts:
            progress(f"lab {self.name} already has {len(state.hosts)} hosts; keeping them all")
        net.create_bridge(state.bridge, state.network)
        self._ensure_repo_server(state)
        wanted = [f"{self.name}-{i}" for i in range(1, max(hosts, len(state.hosts)) + 1)]
        todo = [n for n in wanted if n not in state.hosts or not proc.alive(state.hosts[n].proc_ref)]
        if todo:
            progress(f"booting {len(todo)} host(s): {', '.join(todo)}")
        for name in todo:
            self._boot_host(state, name, wanted.index(name) + 1)
        self._write_inventory(state)
        if todo:
            self._wait_all(state, [state.hosts[n] for n in todo], progress)
        progress(f"lab {self.name} is up: {len(state.hosts)} host(s) on {state.subnet}")
        return state

    def _create(self, progress: Progress, subnet: str | None) -> LabState:
        # Claim the subnet first, atomically and machine-wide: the image lock below can make labs started at the
        # same moment wait for each other, and none may pick what another already took while it waited.
        network = claims.claim(self.name, self.dir, net.parse_subnet(subnet) if subnet else None)
        try:
            return self._create_on(network, progress)
        except BaseException:
            claims.release(self.dir)  # nothing was made on the subnet yet: give it back
            raise

    def _create_on(self, network: ipaddress.IPv4Network, progress: Progress) -> LabState:
        base = image.ensure_image(self.settings.lab_cache, progress)
        if not self.key.exists():
            system.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    f"sentry-lab-{self.name}",
                    "-f",
                    self.key,
                ]
            )
        state = LabState(
            name=self.name,
            id=self.id,
            subnet=str(network),
            bridge=f"sbr{self.id}",
            image=str(base.root),
            repo=str(base.repo),
            repo_port=REPO_PORT,
            inventory_dir=str(self.inventory_dir),
        )
        # Mark the image in use so a later recipe change does not delete it under running hosts.
        (base.root.parent / f"in-use-{self.id}").write_text(str(self.dir) + "\n")
        save(self.state_file, state)
        return state

    def _ensure_repo_server(self, state: LabState) -> None:
        if proc.alive(proc.ProcRef.from_json(state.repo_proc)):
            return
        gw = net.gateway(state.network)
        ref = proc.spawn_detached(
            [
                sys.executable,
                "-m",
                "http.server",
                "--bind",
                str(gw),
                "--directory",
                state.repo,
                str(state.repo_port),
            ],
            self.dir / "repo-http.log",
            cgroup=f"sentry/{self.id}-repo",
        )
        state.repo_proc = ref.to_json()
        save(self.state_file, state)

    def _boot_host(self, state: LabState, name: str, index: int) -> None:
        old = state.hosts.get(name)
        if old is not None:  # recorded but not running (crash, reboot): start it from scratch
            machine.shutdown(old, grace=2)
            net.delete_host_net(old.netns, old.veth)
        hdir = machine.host_dir(self.dir, name)
        address = net.host_address(state.network, index)
        host_key = machine.generate_host_key(hdir / "keys", f"{name}@sentry-lab")
        upper = hdir / "upper"
        upper.mkdir(parents=True, exist_ok=True)
        machine.write_identity(
            upper,
            hostname=name,
            host_key_dir=hdir / "keys",
            authorized_key=Path(f"{self.key}.pub").read_text().strip(),
            apt_source=f"deb [trusted=yes] http://{net.gateway(state.network)}:{state.repo_port}/ ./",
        )
        host = HostState(
            name=name,
            index=index,
            address=str(address),
            netns=f"sentry-{self.id}-{index}",
            veth=f"sv{self.id}{index}",
            machine=f"sentry-{self.id}-{index}",
            cgroup=f"sentry/{self.id}-{index}",
            root=str(hdir / "root"),
            host_key_pub=host_key,
        )
        # Record before creating anything, so a crash part-way is still undone by 'lab down'.
        state.hosts[name] = host
        save(self.state_file, state)
        net.create_host_net(host.netns, host.veth, state.bridge, address, state.network)
        machine.mount_root(Path(state.image), hdir)
        host.proc = machine.boot(host, hdir).to_json()
        save(self.state_file, state)

    def _wait_all(self, state: LabState, hosts: list[HostState], progress: Progress) -> None:
        def wait(h: HostState) -> str:
            machine.wait_ready(h, self.ssh_argv(h), BOOT_TIMEOUT)
            return h.name

        with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
            for name in pool.map(wait, hosts):
                progress(f"{name} accepts SSH")

    def _write_inventory(self, state: LabState) -> None:
        inv = self.inventory_dir
        marker = inv / LAB_MARKER
        if inv.exists() and not marker.exists():
            raise LabError(
                f"{inv} exists and was not written by the lab",
                hint="pick another --name or --inventories; the lab never overwrites a client inventory",
            )
        (inv / "group_vars").mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{self.dir}\n")
        header = f"# Written by 'sentryctl lab up --name {self.name}'; removed by 'sentryctl lab down'.\n"
        hosts_yml = {
            "all": {
                "hosts": {h.name: {"ansible_host": h.address, "ansible_port": 22} for h in state.hosts.values()},
                "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(self.key)},
            }
        }
        (inv / "hosts.yml").write_text(header + yaml.safe_dump(hosts_yml, sort_keys=False))
        (inv / "known_hosts").write_text("".join(f"{h.address} {h.host_key_pub}\n" for h in state.hosts.values()))
        client_yml = {"client": self.name, "tier": LAB_TIER, "lab": True, "window": "always"}
        (inv / "client.yml").write_text(header + yaml.safe_dump(client_yml, sort_keys=False))
        group_vars_file = inv / "group_vars/all.yml"
        if not group_vars_file.exists():  # a person may tune these for experiments; keep their edits
            group_vars = {
                "sentry_client": self.name,
                "sentry_tier": LAB_TIER,
                "sentry_mgmt_networks": [state.subnet],
                "sentry_game_ports_tcp": [7777],
                "sentry_game_ports_udp": [7777],
                "sentry_support_contact": "Sentry SOC <soc@sentry.invalid>",
            }
            group_vars_file.write_text(header + yaml.safe_dump(group_vars, sort_keys=False))

    # ---- down ----------------------------------------------------------------------------------
    def down(self, progress: Progress) -> bool:
        """Remove everything this lab made. Returns False when there was nothing to remove."""
        system.require_root()
        state = self.state()
        if state is None and not self.dir.exists():
            return False
        if state is not None:
            progress(f"stopping {len(state.hosts)} host(s) of lab {self.name}")
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(machine.shutdown, state.hosts.values()))
            for h in state.hosts.values():
                net.delete_host_net(h.netns, h.veth)
                machine.remove_files(machine.host_dir(self.dir, h.name))
            proc.stop(proc.ProcRef.from_json(state.repo_proc), f"sentry/{self.id}-repo", grace=5)
            net.delete_bridge(state.bridge)
            inv = Path(state.inventory_dir)
            if (inv / LAB_MARKER).exists():
                shutil.rmtree(inv)
            (Path(state.image).parent / f"in-use-{self.id}").unlink(missing_ok=True)
        self._sweep()
        shutil.rmtree(self.dir, ignore_errors=True)
        claims.release(self.dir)  # last: until here the bridge may still hold the subnet's address
        progress(f"lab {self.name} removed")
        return True

    def _sweep(self) -> None:
        """Catch what a crash left unrecorded: every kernel object named with this lab's id."""
        hosts_dir = self.dir / "hosts"
        if hosts_dir.exists():
            for hdir in hosts_dir.iterdir():
                system.unmount_all(hdir / "root")
                machine.remove_files(hdir)
        for line in system.run(["ip", "netns", "list"]).stdout.splitlines():
            ns = line.split()[0] if line.split() else ""
            if ns.startswith(f"sentry-{self.id}-"):
                system.run(["ip", "netns", "del", ns], check=False)
        for link in (f"sbr{self.id}",):
            if net.link_exists(link):
                net.delete_bridge(link)
        for top in proc.cgroup_dirs("sentry"):
            if top.is_dir():
                for d in top.glob(f"{self.id}-*"):
                    proc.stop(None, f"sentry/{d.name}", grace=0)
                try:
                    top.rmdir()  # only succeeds when no other lab still has cgroups here
                except OSError:
                    pass


def lab_ips(state: LabState) -> list[ipaddress.IPv4Address]:
    return [ipaddress.IPv4Address(h.address) for h in state.hosts.values()]
