"""Detection packs: what the agent accepts and refuses, and the nft transaction that carries a blocklist."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from sentry_agent.blocklist import NftBlocklist, parse_elements, plan
from sentry_agent.config import ALWAYS_NEVER_BAN, RuleOverride
from sentry_agent.packs import BlockEntry, PackError, check_pack

from .pack_helpers import PACK_RULES, Signer

NEVER_BAN = (*ALWAYS_NEVER_BAN, ipaddress.ip_network("10.0.0.0/8"))
ENTRY = {"net": "203.0.113.0/24", "expires_at": "2030-01-01T00:00:00Z", "comment": "botnet X"}


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def check(signer: Signer, signed: Any, **changes: Any) -> Any:
    args: dict[str, Any] = {
        "digest": signed.digest,
        "version": signed.version,
        "public_key": signer.public_hex,
        "never_ban": NEVER_BAN,
    }
    args.update(changes)
    return check_pack(signed.content, signed.signature, **args)


def test_a_signed_pack_is_accepted_with_its_rules_and_blocklist(signer: Signer) -> None:
    signed = signer.pack(blocklist=[ENTRY, {"net": "2001:db8::/32", "expires_at": "2030-01-01T00:00:00Z"}])
    pack = check(signer, signed, overrides={"game-bruteforce": RuleOverride(threshold=4), "gone": RuleOverride(1)})
    assert (pack.version, pack.digest) == ("2026.12.7", signed.digest)
    assert pack.rules is not None and pack.rules.version == "pack-rules-2"
    assert pack.rules.rules[0].threshold == 4  # the config's override, for the rules the pack has
    assert [str(e.net) for e in pack.blocklist] == ["203.0.113.0/24", "2001:db8::/32"]
    assert pack.rules_digest is not None and len(pack.rules_digest) == 64


def test_forged_altered_or_misassigned_packs_are_refused(signer: Signer) -> None:
    signed = signer.pack(blocklist=[ENTRY])
    with pytest.raises(PackError, match="signature does not verify"):
        check(signer, signed, public_key=Signer().public_hex)  # signed by another key
    altered = type(signed)(signed.version, signed.content.replace(b"203.0.113.0", b"203.0.114.0"), signed.signature)
    with pytest.raises(PackError, match="signature does not verify"):
        check(signer, altered, digest=altered.digest)  # content changed, digest made to match
    with pytest.raises(PackError, match="not the assigned digest"):
        check(signer, altered, digest=signed.digest)
    with pytest.raises(PackError, match=r"says version 2026\.12\.7"):
        check(signer, signed, version="2026.12.8")


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"blocklist": [{**ENTRY, "net": "10.1.0.0/16"}]}, "overlaps never_ban 10.0.0.0/8"),
        ({"blocklist": [{**ENTRY, "net": "0.0.0.0/0"}]}, "overlaps never_ban"),
        ({"blocklist": [{**ENTRY, "net": "::/0"}]}, "overlaps never_ban ::1/128"),
        ({"blocklist": [{**ENTRY, "net": "203.0.113.7/24"}]}, "strict form"),
        ({"blocklist": [{**ENTRY, "expires_at": "2030-01-01 00:00:00"}]}, "expires_at"),
        ({"blocklist": [{**ENTRY, "comment": "x" * 201}]}, "comment"),
        ({"blocklist": [{**ENTRY, "port": 22}]}, "unknown key 'port'"),
        ({"blocklist": [ENTRY] * 10_001}, "at most 10000"),
        ({"rules": None, "blocklist": []}, "neither rules nor blocklist"),
        ({"rules": {**PACK_RULES, "rules": [{**PACK_RULES["rules"][0], "pattern": "no ip group"}]}}, "rules: .*ip"),
        ({"format": "sentry-pack/2"}, "format"),
        ({"extra": 1}, "unknown key 'extra'"),
    ],
)
def test_invalid_content_refuses_the_whole_pack(signer: Signer, changes: dict[str, Any], error: str) -> None:
    signed = signer.pack(**changes)
    with pytest.raises(PackError, match=error):
        check(signer, signed)


def net(text: str) -> Any:
    return ipaddress.ip_network(text)


def entry(text: str, seconds: float, now: float = 1000.0) -> BlockEntry:
    return BlockEntry(net(text), now + seconds)


def test_plan_replaces_the_previous_pack_and_handles_overlaps() -> None:
    new = [
        entry("203.0.113.0/24", 600.4),  # timeout rounded up
        entry("203.0.113.128/25", 600),  # inside another entry of the pack: left out
        entry("198.51.100.0/24", 0.5),  # expires within a second: left out
        entry("192.0.2.0/24", 60),  # inside a network that is not ours: already blocked
        entry("2001:db8::/48", 60),
    ]
    old = [net("100.64.0.0/10"), net("203.0.113.0/24"), net("2001:db8::/32")]
    existing = dict.fromkeys([net("203.0.113.7/32"), net("192.0.0.0/16"), net("2001:db8::/32"), net("100.64.0.0/10")])
    p = plan(new, old, existing, 1000.0)
    assert [str(n) for n in p.pre] == ["203.0.113.7/32", "2001:db8::/32"]  # covered ban; old net containing a new one
    assert [str(n) for n in p.remove] == ["100.64.0.0/10"]
    assert [(str(n), t) for n, t in p.add] == [("203.0.113.0/24", 601), ("2001:db8::/48", 60)]


def test_the_nft_scripts_delete_through_a_one_second_timeout_and_add_with_the_pack_timeout() -> None:
    nft = NftBlocklist(table="sentry", set_v4="banned_v4", set_v6="banned_v6")
    existing = {net("203.0.113.9/32"): 50, net("203.0.113.0/24"): 3600}  # the /24: another expiry, replaced
    p = plan([entry("203.0.113.0/24", 86400)], [net("198.51.100.0/24")], existing, 1000.0)
    pre, main = nft.scripts(p)
    assert pre == (
        "add element inet sentry banned_v4 { 203.0.113.9/32 timeout 1s }\n"
        "delete element inet sentry banned_v4 { 203.0.113.9/32 }\n"
    )
    assert main == (
        "add element inet sentry banned_v4 { 198.51.100.0/24 timeout 1s, 203.0.113.0/24 timeout 1s }\n"
        "delete element inet sentry banned_v4 { 198.51.100.0/24, 203.0.113.0/24 }\n"
        "add element inet sentry banned_v4 { 203.0.113.0/24 timeout 86400s }\n"
    )


def test_large_packs_go_in_chunks_per_set_and_plan_fast() -> None:
    import time

    new = [entry(f"100.{i // 256}.{i % 256}.0/24", 600) for i in range(10_000)]
    new.append(entry("2001:db8::/48", 600))
    existing = dict.fromkeys(net(f"100.{i // 256}.{i % 256}.7/32") for i in range(0, 10_000, 2))
    started = time.perf_counter()
    p = plan(new, [], existing, 1000.0)
    assert time.perf_counter() - started < 2  # a quadratic plan would take minutes
    assert len(p.pre) == 5_000 and len(p.add) == 10_001
    pre, main = NftBlocklist().scripts(p)
    lines = main.splitlines()
    assert len(lines) == 10 + 1  # only adds (nothing to replace): 10 chunks of 1000 v4 and one v6 line
    assert all(line.count(",") < 1000 for line in lines)
    assert lines[-1] == "add element inet sentry banned_v6 { 2001:db8::/48 timeout 600s }"
    assert len(pre.splitlines()) == 2 * 5


def test_elements_of_an_interval_set_are_read_from_nft_json() -> None:
    data = {
        "nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {
                "set": {
                    "name": "banned_v4",
                    "elem": [
                        {"elem": {"val": "1.2.3.4", "timeout": 60, "expires": 59}},
                        {"elem": {"val": {"prefix": {"addr": "10.0.0.0", "len": 24}}, "timeout": 90}},
                        "5.6.7.8",
                        {"elem": {"val": {"range": ["1.0.0.1", "1.0.0.9"]}}},
                    ],
                }
            },
        ]
    }
    assert {str(n): t for n, t in parse_elements(data).items()} == {
        "1.2.3.4/32": 59,
        "10.0.0.0/24": None,
        "5.6.7.8/32": None,
    }


def test_entries_already_there_with_the_same_expiry_are_left_alone() -> None:
    existing = {net("203.0.113.0/24"): 598, net("198.51.100.0/24"): 100}
    p = plan([entry("203.0.113.0/24", 600), entry("198.51.100.0/24", 600)], [], existing, 1000.0)
    assert [str(n) for n, _ in p.add] == ["198.51.100.0/24"] and [str(n) for n in p.replace] == ["198.51.100.0/24"]
