"""Lab networking: one bridge per lab in the machine's namespace, one network namespace per host.

Hosts reach each other and the bridge address (the controller, and the lab's apt repository) and nothing
else: no default route leaves the bridge.
"""

from __future__ import annotations

import ipaddress
import json
import logging

from ..errors import LabError
from . import system

log = logging.getLogger(__name__)

AUTO_POOL = ipaddress.IPv4Network("10.213.0.0/16")
FIRST_HOST_OFFSET = 10  # hosts get .11, .12, ...; .1 is the bridge


def used_networks(except_dev: str | None = None) -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the machine has an address or a route in (but those on ``except_dev``)."""
    nets: list[ipaddress.IPv4Network] = []
    addrs = json.loads(system.run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]")
    for link in addrs:
        if except_dev is not None and link.get("ifname") == except_dev:
            continue
        for info in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    routes = json.loads(system.run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    for route in routes:
        dst = route.get("dst", "")
        if except_dev is not None and route.get("dev") == except_dev:
            continue
        if dst and dst != "default" and not dst.startswith(("broadcast", "local")):
            try:
                net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
            except ValueError:
                continue
            if isinstance(net, ipaddress.IPv4Network) and not net.is_loopback:
                nets.append(net)
    return nets


def check_free(subnet: ipaddress.IPv4Network, except_dev: str | None = None) -> None:
    for net in used_networks(except_dev):
        if net.overlaps(subnet):
            raise LabError(
                f"address range {subnet} is in use on this machine ({net})",
                hint="pick another with --subnet, or 'sentryctl lab down' the lab that uses it",
            )


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise LabError(f"invalid --subnet {text!r}: {exc}", hint="give a network like 10.213.7.0/24") from exc
    if not (isinstance(net, ipaddress.IPv4Network) and net.is_private and net.prefixlen <= 26):
        raise LabError(
            f"--subnet {text} must be a private IPv4 network of at least /26",
            hint="give a network like 10.213.7.0/24",
        )
    return ipaddress.IPv4Network(net)


def gateway(subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    return subnet.network_address + 1


def host_address(subnet: ipaddress.IPv4Network, index: int) -> ipaddress.IPv4Address:
    addr = subnet.network_address + FIRST_HOST_OFFSET + index
    if addr not in subnet or addr == subnet.broadcast_address:
        raise LabError(f"subnet {subnet} has no room for host number {index}", hint="use a larger --subnet")
    return addr


def link_exists(name: str) -> bool:
    return system.run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return system.run(["ip", "netns", "pids", name], check=False).returncode == 0


def create_bridge(name: str, subnet: ipaddress.IPv4Network) -> None:
    if not link_exists(name):
        system.run(["ip", "link", "add", name, "type", "bridge"])
    cidr = f"{gateway(subnet)}/{subnet.prefixlen}"
    current = system.run(["ip", "-4", "-o", "addr", "show", "dev", name]).stdout
    if cidr not in current:
        # The claim keeps other labs off this subnet, but not anything else on the machine: look again right
        # before adding the address, so a clash is refused instead of two bridges answering for one address.
        check_free(subnet, except_dev=name)
        system.run(["ip", "addr", "add", cidr, "dev", name])
    system.run(["ip", "link", "set", name, "up"])


def delete_bridge(name: str) -> None:
    if link_exists(name):
        system.run(["ip", "link", "del", name])


def create_host_net(
    netns: str, veth: str, bridge: str, address: ipaddress.IPv4Address, subnet: ipaddress.IPv4Network
) -> None:
    delete_host_net(netns, veth)  # a leftover from a crashed run would make every step below fail
    system.run(["ip", "netns", "add", netns])
    peer = f"{veth}p"
    system.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", peer])
    system.run(["ip", "link", "set", veth, "master", bridge, "up"])
    system.run(["ip", "link", "set", peer, "netns", netns])
    inside = ["ip", "-n", netns]
    system.run([*inside, "link", "set", peer, "name", "eth0"])
    system.run([*inside, "addr", "add", f"{address}/{subnet.prefixlen}", "dev", "eth0"])
    system.run([*inside, "link", "set", "eth0", "up"])
    system.run([*inside, "link", "set", "lo", "up"])


def delete_host_net(netns: str, veth: str) -> None:
    if link_exists(veth):
        system.run(["ip", "link", "del", veth], check=False)
    if netns_exists(netns):
        system.run(["ip", "netns", "del", netns], check=False)
