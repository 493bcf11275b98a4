"""The pack state machine in the running agent: activation between polls, refusals, self-revert, resume, drop."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sentry_agent.config import parse_config
from sentry_agent.daemon import Agent
from sentry_agent.detect import IPAddress
from sentry_agent.firewall import FirewallStats
from sentry_agent.packpoll import Assignment, PackPoller, PollError
from sentry_agent.rules import parse_rules
from sentry_agent.spool import iter_records

from .agent_helpers import FakeClock, append, failed_logins
from .pack_helpers import PACK_RULES, Signed, Signer
from .test_agent_daemon import RULES, Recorder

ENTRY = {"net": "203.0.113.0/24", "expires_at": "2030-01-01T00:00:00Z"}


class FakeClient:
    """The collector's two routes as the test sets them."""

    def __init__(self) -> None:
        self.assigned: Assignment = Assignment(None, None)
        self.packs: dict[str, Signed] = {}
        self.fetches: list[str] = []

    def assign(self, signed: Signed | None, digest: str | None = None) -> None:
        self.assigned = (
            Assignment(None, None) if signed is None else Assignment(signed.version, digest or signed.digest)
        )
        if signed is not None:
            self.packs[signed.version] = signed

    def assignment(self) -> Assignment:
        return self.assigned

    def pack(self, version: str) -> tuple[bytes, bytes]:
        self.fetches.append(version)
        if version not in self.packs:
            raise PollError("404")
        return self.packs[version].content, self.packs[version].signature

    def close(self) -> None:
        pass


class FakeBlocklist:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[str]]] = []

    def apply(self, new: Any, old: Any, now: float) -> None:
        self.calls.append(([str(e.net) for e in new], [str(n) for n in old]))


class OkTransport:
    def post(self, body: bytes) -> tuple[int, bytes]:
        return 200, b'{"rejected": []}'

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


class Harness:
    def __init__(self, config_dict: dict[str, Any], signer: Signer, clock: FakeClock) -> None:
        self.data = {
            **config_dict,
            "ban_command_enabled": True,
            "collector_url": "https://127.0.0.1:9",
            "collector_cert_sha256": "0" * 64,
            "collector_token": "TOKEN",
            "pack_public_key": signer.public_hex,
            "pack_poll_seconds": 3600,
        }
        self.log = Path(config_dict["sources"][0]["path"])
        self.log.write_text("", encoding="utf-8")
        self.client = FakeClient()
        self.clock = clock
        self.agent: Agent | None = None

    def start(self) -> Agent:
        config = parse_config(self.data)
        self.bans = Recorder()
        self.blocklist = FakeBlocklist()
        agent = Agent(
            config,
            parse_rules(RULES, config.rule_overrides),
            "1.0.0-test",
            ban_func=self.bans,
            transport=OkTransport(),
            blocklist=self.blocklist,  # type: ignore[arg-type]
            firewall_stats=lambda: FirewallStats(0),
            clock=self.clock,
        )
        # The test polls by hand, deterministically, instead of the poller's thread.
        assert agent.packs is not None
        self.poller = PackPoller(config, agent.inbox, agent.packs.known, client=self.client)  # type: ignore[arg-type]
        agent.poller = None
        agent.start()
        self.agent = agent
        return agent

    def poll(self) -> str:
        result = self.poller.poll_once()
        assert self.agent is not None
        self.agent.run_once()
        return result

    def heartbeats(self, event: str = "pack") -> list[dict[str, Any]]:
        spool = Path(self.data["spool_dir"])
        return [r for r in iter_records(spool) if r["type"] == "heartbeat" and r["event"] == event]

    def attack(self, ip: str, n: int) -> list[tuple[IPAddress, int]]:
        append(self.log, failed_logins(ip, n))
        assert self.agent is not None
        self.agent.run_once()
        return self.bans.calls

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.shutdown()
            self.agent = None


@pytest.fixture
def h(config_dict: dict[str, Any], signer: Signer, clock: FakeClock) -> Iterator[Harness]:
    harness = Harness(config_dict, signer, clock)
    harness.start()
    yield harness
    harness.stop()


def test_a_pack_takes_effect_between_polls_without_restart(h: Harness, signer: Signer) -> None:
    agent = h.agent
    assert agent is not None
    assert h.attack("198.51.100.5", 2) == []  # release rules: threshold 5
    signed = signer.pack(blocklist=[ENTRY])
    h.client.assign(signed)
    assert h.poll() == "activate"
    (beat,) = h.heartbeats()
    assert (beat["pack_version"], beat["pack_digest"], beat["pack_status"]) == ("2026.12.7", signed.digest, "active")
    assert beat["pack_error"] is None and beat["rules_version"] == "pack-rules-2"
    assert beat["rules_digest"] == agent.packs.active.rules_digest  # type: ignore[union-attr]
    assert h.blocklist.calls == [(["203.0.113.0/24"], [])]
    assert h.attack("198.51.100.6", 2) == [(ipaddress.ip_address("198.51.100.6"), 900)]  # pack rules: threshold 2
    (alert,) = [r for r in iter_records(agent.config.spool_dir) if r["type"] == "alert"]
    assert alert["rules_version"] == "pack-rules-2"
    assert h.heartbeats("start")[0]["detect_us_per_line"] is None  # no line judged yet
    h.stop()
    assert isinstance(h.heartbeats("stop")[0]["detect_us_per_line"], float)
    h.start()
    assert h.poll() == "unchanged" and h.client.fetches == ["2026.12.7"]  # not fetched again


@pytest.mark.parametrize("attack", ["forged", "altered", "wrong-digest"])
def test_forged_or_altered_packs_are_refused_and_nothing_applied(h: Harness, signer: Signer, attack: str) -> None:
    good = signer.pack(blocklist=[ENTRY])
    if attack == "forged":
        bad = Signer().pack(blocklist=[ENTRY])
        h.client.assign(bad)
    elif attack == "altered":
        bad = Signed(good.version, good.content.replace(b'"threshold":2', b'"threshold":1'), good.signature)
        h.client.assign(bad)  # the assignment's digest is the altered content's: only the signature catches it
    else:
        bad = good
        h.client.assign(good, digest="f" * 64)
    assert h.poll() == "refuse"
    (beat,) = h.heartbeats()
    assert beat["pack_status"] == "refused" and beat["pack_version"] is None
    assert "refused" in beat["pack_error"] and beat["pack_refused_digest"] == (h.client.assigned.digest)
    assert h.blocklist.calls == []
    assert h.attack("198.51.100.5", 2) == []  # release rules still
    assert h.poll() == "unchanged"  # the refused digest is not fetched again
    assert len(h.client.fetches) == 1


def test_self_test_fail_is_reverted_to_the_last_known_good(h: Harness, signer: Signer) -> None:
    good = signer.pack("2026.12.7", blocklist=[ENTRY])
    h.client.assign(good)
    h.poll()
    failing = signer.pack("2026.12.8", rules={**PACK_RULES, "version": "bad", "self_test": "fail"})
    h.client.assign(failing)
    assert h.poll() == "activate"
    beat = h.heartbeats()[-1]
    assert (beat["pack_status"], beat["pack_version"], beat["rules_version"]) == (
        "reverted",
        "2026.12.7",
        "pack-rules-2",
    )
    assert beat["pack_refused_digest"] == failing.digest and "self_test" in beat["pack_error"]
    assert h.blocklist.calls == [(["203.0.113.0/24"], [])]


def test_a_detector_that_raises_reverts_the_pack(h: Harness, signer: Signer) -> None:
    agent = h.agent
    assert agent is not None
    signed = signer.pack(blocklist=[ENTRY])
    h.client.assign(signed)
    h.poll()

    def explode(*args: Any) -> Any:
        raise RuntimeError("boom")

    agent.detector.feed = explode  # type: ignore[method-assign]
    append(h.log, failed_logins("198.51.100.9", 1))
    agent.run_once()
    beat = h.heartbeats()[-1]
    assert (beat["pack_status"], beat["pack_version"], beat["rules_version"]) == ("reverted", None, "test-rules-7")
    assert beat["pack_refused_digest"] == signed.digest and "RuntimeError: boom" in beat["pack_error"]
    assert h.blocklist.calls[-1] == ([], ["203.0.113.0/24"])  # the pack's entries removed
    assert h.attack("198.51.100.5", 5) != []  # the release detector works again


def test_a_restarted_agent_resumes_its_pack_verified_again(h: Harness, signer: Signer) -> None:
    signed = signer.pack(blocklist=[ENTRY])
    h.client.assign(signed)
    h.poll()
    h.stop()
    agent = h.start()
    beat = h.heartbeats("start")[-1]
    assert (beat["pack_status"], beat["pack_version"], beat["rules_version"]) == ("active", "2026.12.7", "pack-rules-2")
    assert h.blocklist.calls == [(["203.0.113.0/24"], [])]  # applied again on the fresh firewall handle
    h.stop()
    stored = agent.config.pack_dir / "active.json"
    data = json.loads(stored.read_text())
    data["digest"] = "0" * 64  # tampered on disk
    stored.write_text(json.dumps(data))
    h.start()
    beat = h.heartbeats("start")[-1]
    assert (beat["pack_status"], beat["pack_version"], beat["rules_version"]) == ("refused", None, "test-rules-7")


def test_assignment_null_drops_the_pack(h: Harness, signer: Signer) -> None:
    signed = signer.pack(blocklist=[ENTRY])
    h.client.assign(signed)
    h.poll()
    h.client.assign(None)
    assert h.poll() == "drop"
    beat = h.heartbeats()[-1]
    assert (beat["pack_status"], beat["pack_version"], beat["rules_version"]) == ("none", None, "test-rules-7")
    assert h.blocklist.calls[-1] == ([], ["203.0.113.0/24"])
    assert h.poll() == "none" and len(h.heartbeats()) == 2  # no second drop
    assert not (h.agent.config.pack_dir / "active.json").exists()  # type: ignore[union-attr]
