"""Collective defence: an address banned at ``min_clients`` or more distinct clients within ``within`` is proposed
as a fleet-wide blocklist entry that expires; ``--push`` builds a collective pack (the latest pack's rules and
blocklist plus the proposals, the version bumped) and pushes it, canary first, to the clients whose tier opted in.

An address inside any client's management network, or the collector's own address, is never proposed: blocking
it would cut Sentry off from the hosts it protects. Each network is proposed once while its proposal lives
(recorded, event ``defence.proposed``). Designed to run from a timer on the controller.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from .. import clients as client_store
from ..ledger import Ledger
from ..ledger.defence_signals import BannedSource, ProposalRecord
from ..settings import Settings
from . import validate
from .catalog import build_pack, latest_pack

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Excluded:
    ip: str
    why: str


@dataclass(frozen=True)
class Proposals:
    new: tuple[ProposalRecord, ...]  # recorded by this call
    active: tuple[ProposalRecord, ...]  # every unexpired proposal, the new ones included
    excluded: tuple[Excluded, ...]


def qualifying(found: Sequence[BannedSource], *, min_clients: int) -> list[BannedSource]:
    """Pure: the sources banned at ``min_clients`` or more distinct clients."""
    return [s for s in found if len(set(s.clients)) >= min_clients]


def as_network(ip: str) -> str | None:
    """The address as a strict single-address network (``/32``, ``/128``), or None when it is not an address."""
    try:
        return str(ipaddress.ip_network(ipaddress.ip_address(ip.strip())))
    except ValueError:
        return None


def protected_reason(net: str, protected: Sequence[tuple[Network, str]]) -> str | None:
    """Pure: why ``net`` may never be blocked (it overlaps a protected network), or None."""
    candidate = ipaddress.ip_network(net)
    for network, what in protected:
        if candidate.version == network.version and candidate.overlaps(network):
            return f"inside {what} {network}"
    return None


def protected_networks(settings: Settings) -> list[tuple[Network, str]]:
    """What no proposal may block: what no pack may block (every client's management networks and the collector,
    one home in :mod:`.validate`), and loopback, which an address in a ban could never rightly be."""
    loopback = [(ipaddress.ip_network("127.0.0.0/8"), "loopback"), (ipaddress.ip_network("::1/128"), "loopback")]
    return list(dict.fromkeys([*validate.protected_networks(settings), *loopback]))


def propose(
    settings: Settings,
    ledger: Ledger,
    *,
    min_clients: int,
    within: dt.timedelta,
    expires: dt.timedelta,
    now: dt.datetime | None = None,
    protected: Sequence[tuple[Network, str]] | None = None,
) -> Proposals:
    """Find the sources, leave out the protected ones, record the rest (once each), and return them."""
    now = now or dt.datetime.now(dt.UTC)
    guard = protected_networks(settings) if protected is None else protected
    keep: list[BannedSource] = []
    nets: dict[str, str] = {}
    excluded: list[Excluded] = []
    for source in qualifying(ledger.banned_sources(now - within), min_clients=min_clients):
        net = as_network(source.ip)
        if net is None:
            excluded.append(Excluded(source.ip, "not an IP address"))
            continue
        why = protected_reason(net, guard)
        if why is not None:
            excluded.append(Excluded(source.ip, why))
            continue
        keep.append(source)
        nets[source.ip] = net
    new = ledger.record_proposals(keep, nets=nets, expires_at=now + expires)
    return Proposals(tuple(new), tuple(ledger.proposals(active_at=now)), tuple(excluded))


def next_version(versions: Sequence[str]) -> str:
    """The highest version with its patch number bumped (a pre-release part dropped); 0.1.0 for the first pack."""
    from ..versions import compare

    if not versions:
        return "0.1.0"
    top = versions[0]
    for v in versions[1:]:
        if compare(v, top) > 0:
            top = v
    core = top.split("+", 1)[0].split("-", 1)[0]
    major, minor, patch = (int(x) for x in core.split("."))
    return f"{major}.{minor}.{patch + 1}"


def collective_blocklist(
    previous: Sequence[tuple[str, dt.datetime, str | None]], active: Sequence[ProposalRecord], now: dt.datetime
) -> list[dict[str, str]]:
    """Pure: the previous pack's unexpired entries plus the active proposals, one entry per network."""
    out: dict[str, dict[str, str]] = {}
    for net, expires_at, comment in previous:
        if expires_at > now:
            entry = {"net": net, "expires_at": _stamp(expires_at)}
            if comment:
                entry["comment"] = comment
            out[net] = entry
    for p in active:
        if p.expires_at > now and p.net not in out:
            out[p.net] = {
                "net": p.net,
                "expires_at": _stamp(p.expires_at),
                "comment": f"collective defence: banned at {len(p.clients)} clients",
            }
    return [out[k] for k in sorted(out)]


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def opted_in(settings: Settings, ledger: Ledger) -> list[str]:
    """The clients whose tier opted in to collective defence (lab inventories left out, as with --all)."""
    from .policy import load_policy

    policy = load_policy()
    found = []
    for inv in client_store.list_clients(settings):
        if inv.meta.get("lab") or ledger.client(inv.client) is None:
            continue
        if policy.of(str(inv.tier)).collective_defence:
            found.append(inv.client)
    return found


def build_collective(settings: Settings, ledger: Ledger, active: Sequence[ProposalRecord], now: dt.datetime) -> str:
    """Build the collective pack (latest rules and blocklist + the proposals); returns its version."""
    latest = latest_pack(settings, ledger)
    previous = [(e.net, e.expires_at, e.comment) for e in latest.blocklist] if latest is not None else []
    version = next_version([p.version for p in ledger.packs()])
    build_pack(
        settings,
        ledger,
        version=version,
        rules=latest.rules if latest is not None else None,
        blocklist=collective_blocklist(previous, active, now),
    )
    ledger.mark_proposals_pushed([p.id for p in active], version)
    return version
