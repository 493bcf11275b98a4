"""The regex probe: run as a separate process by :mod:`.validate`, never imported by the orchestrator.

Python's ``re`` cannot be interrupted once a search has started, so a pattern with catastrophic backtracking would
hang whatever process tries it. This script does the trying: it reads ``{"rules": ..., "max_line": N,
"slow_seconds": S}`` on stdin, validates the rules with the agent's own ``parse_rules`` (the agent's source folder
is its first argument, so the check is exactly what the agent will do), then, rule by rule, times ``search`` on
adversarial lines built from each pattern, and writes one JSON object a line on stdout::

    {"rules": <count>, "version": ...}   or   {"error": "<parse_rules' one line>"}
    {"start": "<rule id>"}   {"line": "<what is tried next>"} ...
    {"slow": "<rule id>", "seconds": s, "line": "<what>"}     (only when one search was too slow)
    {"done": "<rule id>"}
    {"end": true}

The parent kills it when a rule takes longer than its bound without a ``done``: the last ``start`` names the rule.

How the lines are built: for every repetition in the pattern (``*``, ``+``, ``{m,n}``), a line that satisfies the
pattern up to that repetition, repeats the repetition's body many times, then ends in a character the rest of the
pattern does not expect, so the engine backtracks through every way of splitting the repeated part. Short lines (a
few dozen repeats) expose exponential patterns such as ``(a+)+$``; lines as long as the agent reads (64 KiB)
expose polynomial ones such as ``\\s*\\s*$`` that a short line hides. Stdlib only, like the agent.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator

# Python 3.11 keeps the regex parser private; it is the engine's own reading of the pattern, so the lines built
# from it follow exactly what the engine will try.
from re import _parser  # type: ignore[attr-defined]
from typing import Any

# Growing short counts: an exponential pattern is slow at one of them well before the hard bound kills it.
SHORT_REPEATS = (16, 20, 24, 28, 32)
ENDINGS = ("!", "\x00", " ", "a", "1", "=")
POOL = "a1 !.xZ-_:/="
Node = tuple[Any, Any]


_CATEGORIES: dict[str, Callable[[str], bool]] = {
    "CATEGORY_DIGIT": str.isdigit,
    "CATEGORY_NOT_DIGIT": lambda c: not c.isdigit(),
    "CATEGORY_SPACE": str.isspace,
    "CATEGORY_NOT_SPACE": lambda c: not c.isspace(),
    "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
    "CATEGORY_NOT_WORD": lambda c: not (c.isalnum() or c == "_"),
}


def _in_class(items: list[Node], char: str) -> bool:
    """Whether ``char`` is one of the class's items (before NEGATE is applied)."""
    for op, av in items:
        name = str(op)
        if name == "LITERAL" and chr(av) == char:
            return True
        if name == "RANGE" and av[0] <= ord(char) <= av[1]:
            return True
        if name == "CATEGORY" and str(av) in _CATEGORIES and _CATEGORIES[str(av)](char):
            return True
    return False


def _class_char(items: list[Node]) -> str:
    """A character the class ``[...]`` accepts."""
    negate = any(str(op) == "NEGATE" for op, _ in items)
    for char in POOL:
        if _in_class(items, char) != negate:
            return char
    if not negate:
        for op, av in items:
            if str(op) == "LITERAL":
                return chr(av)
            if str(op) == "RANGE":
                return chr(av[0])
    return "\x01"


class _Builder:
    """Builds the line for one target repetition (``target``: its node's id; None: the pattern's plain sample)."""

    def __init__(self, target: int | None, repeats: int) -> None:
        self.target = target
        self.repeats = repeats

    def seq(self, items: Any) -> tuple[str, bool]:
        out: list[str] = []
        for op, av in items:
            text, hit = self.node(op, av)
            out.append(text)
            if hit:  # stop right after the pumped repetition: what follows it must fail
                return "".join(out), True
        return "".join(out), False

    def node(self, op: Any, av: Any) -> tuple[str, bool]:
        name = str(op)
        if name == "LITERAL":
            return chr(av), False
        if name == "NOT_LITERAL":
            return ("a" if av != ord("a") else "b"), False
        if name == "ANY":
            return "a", False
        if name == "IN":
            return _class_char(av), False
        if name == "SUBPATTERN":
            return self.seq(av[-1])
        if name == "ATOMIC_GROUP":
            return self.seq(av)
        if name == "BRANCH":
            for alternative in av[1]:
                text, hit = self.seq(alternative)
                if hit:
                    return text, True
            return self.seq(av[1][0])
        if name == "GROUPREF_EXISTS":
            return self.seq(av[1])
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = av
            if id(av) == self.target:
                unit, _ = _Builder(None, self.repeats).seq(body)
                count = max(low, min(self.repeats, high))
                return unit * count, True
            text, hit = self.seq(body)
            if hit:
                return text, True
            return text * min(max(low, 1), high), False
        return "", False  # anchors, lookarounds, back references: nothing to write


def _repeat_ids(items: Any) -> Iterator[int]:
    for op, av in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            yield id(av)
            yield from _repeat_ids(av[2])
        elif name == "SUBPATTERN":
            yield from _repeat_ids(av[-1])
        elif name == "ATOMIC_GROUP":
            yield from _repeat_ids(av)
        elif name == "BRANCH":
            for alternative in av[1]:
                yield from _repeat_ids(alternative)
        elif name == "GROUPREF_EXISTS":
            yield from _repeat_ids(av[1])
            if av[2] is not None:
                yield from _repeat_ids(av[2])


def adversarial_lines(pattern: str, max_line: int) -> Iterator[tuple[str, str]]:
    """(what, line) pairs: per repetition, short and long pumped lines with each failing ending."""
    tree = _parser.parse(pattern)
    plain, _ = _Builder(None, 1).seq(tree)
    for ending in ENDINGS:
        yield f"the pattern's sample + {ending!r}", plain + ending
    for number, target in enumerate(_repeat_ids(tree), start=1):
        one, _ = _Builder(target, 1).seq(tree)
        two, _ = _Builder(target, 2).seq(tree)
        unit = max(len(two) - len(one), 1)
        long_repeats = max((max_line - len(one)) // unit, 1)
        for repeats in dict.fromkeys((*SHORT_REPEATS, long_repeats)):
            prefix, _ = _Builder(target, repeats).seq(tree)
            for ending in ENDINGS:
                line = (prefix + ending)[:max_line]
                yield f"repetition {number} x{repeats} + {ending!r} ({len(line)} characters)", line


def main() -> int:
    sys.path.insert(0, sys.argv[1])
    from sentry_agent.rules import RulesError, parse_rules  # type: ignore[import-not-found]

    request = json.loads(sys.stdin.read())

    def say(**message: Any) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    try:
        ruleset = parse_rules(request["rules"])
    except RulesError as exc:
        say(error=str(exc))
        return 0
    say(rules=len(ruleset.rules), version=ruleset.version)
    slow = float(request["slow_seconds"])
    for rule in ruleset.rules:
        say(start=rule.id)
        for what, line in adversarial_lines(rule.pattern.pattern, int(request["max_line"])):
            say(line=what)  # so that a search the parent must kill is named
            began = time.perf_counter()
            rule.pattern.search(line)
            took = time.perf_counter() - began
            if took > slow:
                say(slow=rule.id, seconds=round(took, 3), line=what)
                break
        say(done=rule.id)
    say(end=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
