"""Helpers shared by the agent tests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def failed_logins(ip: str, n: int, user: str = "bob") -> str:
    return "".join(f"2026-11-23T10:00:0{i % 10}Z LOGIN FAILED user={user} ip={ip}\n" for i in range(n))


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.02) -> bool:
    """Poll instead of sleeping a fixed time: returns as soon as the predicate holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


SAMPLE_RE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)\})? '
    r"(?P<value>[-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))$"
)
HELP_RE = re.compile(r"^# HELP (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$")
TYPE_RE = re.compile(
    r"^# TYPE (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?P<type>counter|gauge|histogram|summary|untyped)$",
)


def parse_exposition(text: str) -> dict[str, dict[str, Any]]:
    """Check the text format strictly; return {family: {"type": ..., "samples": {labels: value}}}."""
    assert text.endswith("\n"), "exposition must end with a newline"
    families: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for line in text[:-1].split("\n"):
        if m := HELP_RE.match(line):
            name = m["name"]
            assert name not in families, f"family {name} appears twice"
            families[name] = {"type": None, "samples": {}}
            current = name
        elif m := TYPE_RE.match(line):
            assert current is not None and m["name"] == current, f"TYPE without its HELP: {line}"
            assert families[current]["type"] is None, f"second TYPE: {line}"
            families[current]["type"] = m["type"]
        elif m := SAMPLE_RE.match(line):
            assert current is not None and m["name"] == current, f"sample outside its family block: {line}"
            family = families[current]
            assert family["type"] is not None, f"sample before TYPE: {line}"
            labels = m["labels"] or ""
            assert labels not in family["samples"], f"duplicate series: {line}"
            family["samples"][labels] = float(m["value"])
        else:
            raise AssertionError(f"malformed exposition line: {line!r}")
    return families
