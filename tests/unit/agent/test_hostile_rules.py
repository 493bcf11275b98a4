"""Crafted log lines cannot make the shipped rules ban an address that did not send them."""

from __future__ import annotations

import ipaddress

import pytest
from sentry_agent import default_rules_path
from sentry_agent.detect import Detector
from sentry_agent.rules import load_rules

VICTIM = "192.0.2.50"  # a third party, e.g. a competitor's server or Sentry's own controller
ATTACKER = "203.0.113.66"
SSH = "Nov 23 10:00:00 h sshd[812]: Failed password for"


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("game", f"LOGIN FAILED user=x ip={VICTIM} ip={ATTACKER}"),
        ("game", f"LOGIN FAILED user=LOGIN FAILED user=x ip={VICTIM} ip={ATTACKER}"),
        ("game", f"2026-11-23T10:00:00Z LOGIN FAILED user=a ip={VICTIM} ip={ATTACKER}\r"),
        ("sshd", f"{SSH} invalid user x from {VICTIM} port 22 from {ATTACKER} port 5214 ssh2"),
        ("sshd", f"{SSH} invalid user a from {VICTIM} port 1 ssh2 from {ATTACKER} port 5214 ssh2"),
        ("sshd", f"{SSH} root from {VICTIM} port 22 ssh2 x from {ATTACKER} port 5214 ssh2"),
    ],
)
def test_a_crafted_user_name_cannot_ban_a_third_party(source: str, line: str) -> None:
    det = Detector(load_rules(default_rules_path()).rules)
    found = [d for t in range(50) for d in det.feed(source, line, float(t))]
    assert ipaddress.ip_address(VICTIM) not in {d.ip for d in found}, found


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("game", f"LOGIN FAILED user=bob ip={ATTACKER}"),
        ("game", f"2026-11-23T10:00:00Z LOGIN FAILED user=bob ip={ATTACKER}\n"),
        ("sshd", f"{SSH} invalid user admin from {ATTACKER} port 5214 ssh2"),
        ("sshd", f"{SSH} root from {ATTACKER} port 22"),
    ],
)
def test_the_sender_of_real_lines_is_still_banned(source: str, line: str) -> None:
    det = Detector(load_rules(default_rules_path()).rules)
    found = [d for t in range(10) for d in det.feed(source, line, float(t))]
    assert {d.ip for d in found} == {ipaddress.ip_address(ATTACKER)}
