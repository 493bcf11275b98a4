"""The agent's identifier patterns match the whole string: Python's '$' also matches before a final newline."""

from __future__ import annotations

import sentry_agent
from sentry_agent import batches, config, rules, spool

PATTERNS = [
    ("agent name", config._NAME_RE, "game-1"),
    ("nft identifier", config._NFT_IDENT_RE, "banned_v4"),
    ("agent sha256", config._SHA256_RE, "a" * 64),
    ("collector url", config._URL_RE, "https://10.0.0.1:8443/"),
    ("agent version", sentry_agent._VERSION_RE, "1.0.0"),
    ("rule id", rules._ID_RE, "ssh-bruteforce"),
    ("spool segment", spool._SEGMENT_RE, "spool-000000000001.jsonl"),
    ("shipper boot id", batches._BOOT_RE, "0" * 32),
]


def test_agent_patterns_refuse_a_trailing_newline() -> None:
    for what, pattern, good in PATTERNS:
        assert pattern.match(good), what
        assert pattern.match(good + "\n") is None, what
