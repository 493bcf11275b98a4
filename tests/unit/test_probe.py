"""The health gate's verdict: only HTTP 200 + JSON status "ok" + the expected version is healthy."""

from __future__ import annotations

import json

import pytest

from orchestrator.rollout.probe import judge

OK = json.dumps({"status": "ok", "version": "1.2.0", "last_error": None})


def test_healthy_on_the_expected_version() -> None:
    verdict = judge("h", f"200\n{OK}\n", "1.2.0")
    assert verdict.healthy and verdict.version == "1.2.0"
    assert judge("h", f"200\n{OK}", None).healthy  # any version, when none is expected (rollback checks)


@pytest.mark.parametrize(
    ("output", "why"),
    [
        ("", "garbage"),
        ("hello\nworld", "garbage"),
        ("0\nConnectionRefusedError: [Errno 111]", "no answer"),
        ("0\nTimeoutError: timed out", "no answer"),
        ("200\n<html>not json</html>", "without JSON"),
        ("200\n[1, 2]", "unexpected JSON"),
        ('503\n{"status": "failing", "version": "1.2.0"}', "HTTP 503"),
        ('200\n{"status": "degraded", "version": "1.2.0", "last_error": "nft failed"}', "status degraded"),
        ('200\n{"status": "ok", "version": "1.1.0"}', "runs 1.1.0, expected 1.2.0"),
        ('200\n{"status": "ok"}', "runs None"),
    ],
)
def test_anything_else_is_never_healthy(output: str, why: str) -> None:
    verdict = judge("h", output, "1.2.0")
    assert not verdict.healthy
    assert why in verdict.detail
