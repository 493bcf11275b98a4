from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest
from sentry_agent.ban import BanError, BanManager, BanOutcome, NftBanner
from sentry_agent.config import parse_config
from sentry_agent.detect import IPAddress

ip = ipaddress.ip_address


class Recorder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[IPAddress, int]] = []
        self.fail = fail

    def __call__(self, addr: IPAddress, seconds: int) -> None:
        self.calls.append((addr, seconds))
        if self.fail is not None:
            raise self.fail


def manager_from_config(recorder: Recorder, never_ban: list[str]) -> BanManager:
    cfg = parse_config(
        {"client": "c", "tier": "t", "host": "h", "sources": [], "never_ban": never_ban},
    )
    return BanManager(recorder, cfg.never_ban, enabled=cfg.ban_command_enabled)


@pytest.mark.parametrize(
    "addr",
    ["127.0.0.1", "127.9.9.9", "::1", "10.20.30.40", "::ffff:10.1.2.3", "2001:db8::7"],
)
def test_never_ban_suppresses_loopback_and_configured_cidrs(addr: str) -> None:
    rec = Recorder()
    mgr = manager_from_config(rec, ["10.0.0.0/8", "2001:db8::/64"])
    assert mgr.ban(ip(addr), 600).outcome is BanOutcome.SUPPRESSED
    assert rec.calls == []


@pytest.mark.parametrize("addr", ["11.0.0.1", "203.0.113.7", "2001:db8:1::7", "::2"])
def test_other_addresses_are_banned(addr: str) -> None:
    rec = Recorder()
    mgr = manager_from_config(rec, ["10.0.0.0/8", "2001:db8::/64"])
    assert mgr.ban(ip(addr), 600).outcome is BanOutcome.BANNED
    assert rec.calls == [(ip(addr), 600)]


def test_disabled_ban_command_only_records() -> None:
    rec = Recorder()
    mgr = BanManager(rec, [], enabled=False)
    assert mgr.ban(ip("203.0.113.7"), 60).outcome is BanOutcome.RECORDED
    assert rec.calls == []


def test_failures_are_returned_not_raised() -> None:
    mgr = BanManager(Recorder(fail=BanError("nft exited 1 banning 203.0.113.7: no such set")), [])
    result = mgr.ban(ip("203.0.113.7"), 60)
    assert result.outcome is BanOutcome.FAILED
    assert result.error == "nft exited 1 banning 203.0.113.7: no such set"
    # Even an unexpected exception type from an injected backend.
    result = BanManager(Recorder(fail=RuntimeError()), []).ban(ip("203.0.113.7"), 60)
    assert (result.outcome, result.error) == (BanOutcome.FAILED, "RuntimeError")


def test_nft_argv_picks_the_set_by_family() -> None:
    banner = NftBanner(nft_binary=Path("/usr/sbin/nft"))
    assert banner.argv(ip("203.0.113.7"), 600) == [
        "/usr/sbin/nft",
        "add",
        "element",
        "inet",
        "sentry",
        "banned_v4",
        "{",
        "203.0.113.7",
        "timeout",
        "600s",
        "}",
    ]
    assert banner.argv(ip("2001:db8::7"), 30)[5:8] == ["banned_v6", "{", "2001:db8::7"]


def fake_nft(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "nft"
    script.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    os.chmod(script, 0o755)
    return script


def test_nft_banner_runs_the_command_without_a_shell(tmp_path: Path) -> None:
    args_file = tmp_path / "args"
    script = fake_nft(tmp_path, f'printf "%s\\n" "$@" > {args_file}')
    NftBanner(nft_binary=script, table="t1", set_v4="v4set", timeout=30)(ip("203.0.113.7"), 600)
    words = args_file.read_text(encoding="utf-8").splitlines()
    assert words == ["add", "element", "inet", "t1", "v4set", "{", "203.0.113.7", "timeout", "600s", "}"]


def test_nft_banner_reports_failures(tmp_path: Path) -> None:
    message = "Error: No such file or directory; did you mean set banned_v4"
    script = fake_nft(tmp_path, f'echo "{message}" >&2; exit 1')
    with pytest.raises(BanError, match=r"^nft exited 1 banning 203\.0\.113\.7: Error: No such file"):
        NftBanner(nft_binary=script, timeout=30)(ip("203.0.113.7"), 600)
    with pytest.raises(BanError, match=r"^cannot run"):
        NftBanner(nft_binary=tmp_path / "missing")(ip("203.0.113.7"), 600)


def test_nft_banner_times_out(tmp_path: Path) -> None:
    script = fake_nft(tmp_path, "exec sleep 5")
    with pytest.raises(BanError, match=r"timed out after 0\.2s"):
        NftBanner(nft_binary=script, timeout=0.2)(ip("203.0.113.7"), 600)


def test_an_address_inside_a_blocklisted_network_counts_as_banned(tmp_path: Path) -> None:
    """nft refuses an address inside a network already in the interval set; the network drops it already."""
    script = fake_nft(tmp_path, 'echo "Error: interval overlaps with an existing one" >&2; exit 1')
    NftBanner(nft_binary=script)(ipaddress.ip_address("203.0.113.9"), 60)  # no BanError
    other = fake_nft(tmp_path, 'echo "Error: No such file or directory" >&2; exit 1')
    with pytest.raises(BanError, match="No such file"):
        NftBanner(nft_binary=other)(ipaddress.ip_address("203.0.113.9"), 60)
