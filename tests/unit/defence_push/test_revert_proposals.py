"""The kill switch, collective-defence proposals and the fleet view's pack column, on a real ledger."""

from __future__ import annotations

import datetime as dt
import ipaddress

from orchestrator import fleet as fleet_view
from orchestrator.defence import proposals
from orchestrator.defence.revert import revert
from orchestrator.ledger import Ledger
from orchestrator.settings import Settings

from .conftest import Fleet, add_client, record_pack


def test_revert_puts_every_host_back_waits_for_confirmation_and_names_the_silent(
    settings: Settings, ledger: Ledger, fleet: Fleet
) -> None:
    add_client(settings, ledger, "acme", "professional", 3)
    add_client(settings, ledger, "globex", "professional", 1, first=2)
    old, new = record_pack(ledger, "0.9.0"), record_pack(ledger, "1.0.0")
    ledger.assign_pack("acme", ["a1", "a2", "a3"], "0.9.0", old, push_uid="p0")
    ledger.assign_pack("acme", ["a1", "a2", "a3"], "1.0.0", new, push_uid="p1")
    ledger.assign_pack("globex", ["g1"], "1.0.0", new, push_uid="p1")
    fleet.behaviour[("acme", "a3")] = "silent"
    result = revert(ledger, ["acme"], wait_seconds=30, poll_seconds=5, clock=fleet.clock, wait=fleet.wait)
    assert result.hosts == {"acme/a1": "0.9.0", "acme/a2": "0.9.0", "acme/a3": "0.9.0"}
    assert result.confirmed == ("acme/a1", "acme/a2") and result.silent == ("acme/a3",)
    assert ledger.assignment("globex", "g1").version == "1.0.0"  # type: ignore[union-attr]  # outside the scope
    reasons = {e.payload["reason"] for e in ledger.events() if e.kind == "defence.reverted"}
    assert reasons == {"kill switch (defence revert)"}
    # Pressing it again does not swap the bad pack back in.
    again = revert(ledger, ["acme"], wait_seconds=0)
    assert again.hosts == {} and {a.version for a in ledger.assignments("acme")} == {"0.9.0"}


def test_fleet_status_shows_the_active_pack_and_whether_it_matches(
    settings: Settings, ledger: Ledger, fleet: Fleet
) -> None:
    add_client(settings, ledger, "acme", "professional", 2)
    digest = record_pack(ledger, "1.0.0")
    ledger.assign_pack("acme", ["a1", "a2"], "1.0.0", digest, push_uid="p1")
    fleet.behaviour[("acme", "a2")] = "stuck"
    fleet.tick()
    rows = {r.host: r for r in fleet_view.status(ledger, "acme", now=fleet.now, inventories=settings.inventories)}
    assert (rows["a1"].pack_version, rows["a1"].pack_digest, rows["a1"].pack_matches) == ("1.0.0", digest, "yes")
    assert (rows["a2"].pack_version, rows["a2"].assigned_version, rows["a2"].pack_matches) == (None, "1.0.0", "no")


def test_proposals_need_k_distinct_clients_within_t_and_never_a_management_network(
    settings: Settings, ledger: Ledger, fleet: Fleet
) -> None:
    for i, name in enumerate(["acme", "globex", "initech", "umbrella"], start=1):
        add_client(settings, ledger, name, "professional", 2, first=i, mgmt="192.0.2.0/24")
    old = fleet.now - dt.timedelta(hours=3)
    fleet.now = old
    fleet.ban("umbrella", "u1", "198.51.100.50")  # outside T: does not count
    fleet.now = old + dt.timedelta(hours=3)
    for client, host in [("acme", "a1"), ("acme", "a2"), ("globex", "g1"), ("initech", "i1")]:
        fleet.ban(client, host, "198.51.100.7")  # 3 distinct clients
    for client, host in [("acme", "a1"), ("globex", "g1")]:
        fleet.ban(client, host, "198.51.100.50")  # 2 within T (+1 too old)
    for client, host in [("acme", "a1"), ("globex", "g1"), ("initech", "i1")]:
        fleet.ban(client, host, "192.0.2.10", action="recorded")  # Sentry's own management network
    kw = {"min_clients": 3, "within": dt.timedelta(hours=1), "expires": dt.timedelta(days=7), "now": fleet.now}
    found = proposals.propose(settings, ledger, **kw)  # type: ignore[arg-type]
    assert [(p.net, p.clients, p.bans) for p in found.new] == [("198.51.100.7/32", ("acme", "globex", "initech"), 4)]
    assert found.new[0].expires_at == fleet.now + dt.timedelta(days=7) or found.new[0].expires_at > fleet.now
    assert [(e.ip, e.why) for e in found.excluded] == [
        ("192.0.2.10", "inside a management network of acme 192.0.2.0/24")
    ]
    again = proposals.propose(settings, ledger, **kw)  # type: ignore[arg-type]
    assert again.new == () and [p.net for p in again.active] == ["198.51.100.7/32"]
    assert [e.subject for e in ledger.events() if e.kind == "defence.proposed"] == ["198.51.100.7/32"]
    wider = proposals.propose(settings, ledger, **{**kw, "min_clients": 2})  # type: ignore[arg-type]
    assert [p.net for p in wider.new] == ["198.51.100.50/32"]


def test_protected_networks_cover_the_collector_and_overlaps() -> None:
    guard = [(ipaddress.ip_network("10.0.0.0/8"), "the collector's address")]
    assert proposals.protected_reason("10.1.2.3/32", guard) == "inside the collector's address 10.0.0.0/8"
    assert proposals.protected_reason("2001:db8::1/128", guard) is None
    assert proposals.next_version(["1.2.3", "1.10.0", "1.9.9-rc1"]) == "1.10.1"
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    kept = proposals.collective_blocklist(
        [("203.0.113.0/24", now + dt.timedelta(days=1), "botnet"), ("198.51.100.0/24", now - dt.timedelta(1), None)],
        [], now,
    )  # fmt: skip
    assert kept == [{"net": "203.0.113.0/24", "expires_at": "2026-12-08T00:00:00Z", "comment": "botnet"}]


def test_the_collective_pack_is_the_latest_pack_plus_the_proposals_signed_and_recorded(
    settings: Settings, ledger: Ledger, fleet: Fleet
) -> None:
    from orchestrator.defence import build_pack, get_pack
    from orchestrator.releases import signing

    signing.keygen(settings.home)
    for i, name in enumerate(["acme", "globex", "initech"], start=1):
        add_client(settings, ledger, name, "professional", 1, first=i, mgmt="192.0.2.0/24")
    expires = (fleet.now + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    base = [{"net": "203.0.113.0/24", "expires_at": expires, "comment": "botnet"}]
    build_pack(settings, ledger, version="1.4.0", rules=None, blocklist=base)
    for client, host in [("acme", "a1"), ("globex", "g1"), ("initech", "i1")]:
        fleet.ban(client, host, "198.51.100.7")
    found = proposals.propose(
        settings, ledger, min_clients=3, within=dt.timedelta(hours=1), expires=dt.timedelta(days=7), now=fleet.now
    )
    version = proposals.build_collective(settings, ledger, found.active, fleet.now)
    assert version == "1.4.1"
    pack = get_pack(settings, ledger, version)
    assert sorted(e.net for e in pack.blocklist) == ["198.51.100.7/32", "203.0.113.0/24"]
    assert pack.signed_by is not None, "signed with Sentry's release key"
    assert [p.pushed_version for p in ledger.proposals(active_at=fleet.now)] == [version]
