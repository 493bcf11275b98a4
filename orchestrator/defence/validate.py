"""Everything a pack must pass before it is signed, each failure one line naming the rule or the entry.

- the version: the release grammar (:mod:`orchestrator.versions`);
- the rules: exactly what the agent's ``parse_rules`` accepts (it is run, from the agent's own source), and every
  pattern's matching time bounded on adversarial lines (:mod:`.probe`, in a subprocess killed at a hard timeout:
  Python cannot interrupt a running ``re.search``);
- the blocklist: strict networks, none covering loopback, link-local, unspecified addresses or more than a /8
  (IPv4) or /16 (IPv6), no duplicates or overlaps, an expiry in the future and at most 90 days away;
- and no entry covering a network Sentry itself needs: the management network of ANY client (every inventory under
  ``settings.inventories``) and the collector's address. A pack pushed to one client must not cut Sentry off
  from another, and a pack is not tied to one client when it is built.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import os
import re
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import clients, versions
from ..audit.expected import host_vars
from ..collector.config import CONFIG_FILE, collector_dir
from ..errors import OrchestratorError
from ..settings import Settings
from .errors import DefenceError, DefenceInputError
from .pack import ENTRY_KEYS, BlocklistEntry, parse_stamp

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_ENTRIES = 10_000
MAX_COMMENT = 200
MAX_EXPIRY = _dt.timedelta(days=90)
MAX_RULES = 500
MIN_PREFIX = {4: 8, 6: 16}
# A search slower than this on one line (at most the agent's 64 KiB) is refused; a rule whose lines together take
# longer than RULE_SECONDS (a search that never ends included) is killed and refused.
MAX_LINE = 64 * 1024
SLOW_SECONDS = 0.25
RULE_SECONDS = 5.0
STARTUP_SECONDS = 10.0
RESOLVE_SECONDS = 5.0
DURATION_RE = re.compile(r"^([1-9][0-9]{0,5})([smhdw])\Z")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
RESERVED: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(net), what)
    for net, what in (
        ("127.0.0.0/8", "loopback"),
        ("::1/128", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("fe80::/10", "link-local"),
        ("0.0.0.0/32", "the unspecified address"),
        ("::/128", "the unspecified address"),
    )
)


# ------------------------------------------------------------------------------------------------ version
def validate_version(version: str) -> str:
    if not versions.is_valid(version):
        raise DefenceInputError(f"invalid pack version {version!r}", hint=versions.HINT)
    return version


# ------------------------------------------------------------------------------------------------ rules
def check_rules(
    rules: Mapping[str, Any],
    agent_dir: Path,
    *,
    slow_seconds: float = SLOW_SECONDS,
    rule_seconds: float = RULE_SECONDS,
) -> tuple[str, int]:
    """(rules version, rule count) once the agent's parser accepts ``rules`` and every pattern's matching time is
    bounded; else a :class:`DefenceInputError` naming the rule."""
    if not isinstance(rules, Mapping):
        raise DefenceInputError("rules: must be a JSON object {version, rules}")
    listed = rules.get("rules")
    if isinstance(listed, list) and len(listed) > MAX_RULES:
        raise DefenceInputError(f"rules: at most {MAX_RULES} rules in a pack, got {len(listed)}")
    request = json.dumps({"rules": dict(rules), "max_line": MAX_LINE, "slow_seconds": slow_seconds})
    probe = Path(__file__).with_name("probe.py")
    # -I: the probe sees neither PYTHONPATH nor the user's site packages, only the agent source it is given.
    proc = subprocess.Popen(  # our own interpreter and script, no shell
        [sys.executable, "-I", str(probe), str(agent_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        return _read_probe(proc, request, rule_seconds)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _read_probe(proc: subprocess.Popen[bytes], request: str, rule_seconds: float) -> tuple[str, int]:
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(request.encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # it died at once; what it said on stderr is reported below
    summary: dict[str, Any] = {}
    rule: str | None = None
    trying = ""
    deadline = [time.monotonic() + STARTUP_SECONDS]  # moved on at each rule's start
    for message in _lines(proc, deadline):
        if message is None:  # the deadline passed without a line
            if rule is None:
                raise DefenceError(f"the rules check did not answer within {STARTUP_SECONDS:g} s")
            raise DefenceInputError(
                f"rule {rule}: pattern matching took more than {rule_seconds:g} s on an adversarial line "
                f"({trying}): catastrophic backtracking",
                hint="make the repetitions unambiguous (no nested or adjacent repeats that can match the same text) "
                "and anchor the pattern on a literal",
            )
        if "error" in message:
            raise DefenceInputError(f"rules: {message['error']}")
        if "rules" in message:
            summary = message
        elif "start" in message:
            rule = str(message["start"])
            deadline[0] = time.monotonic() + rule_seconds
        elif "slow" in message:
            raise DefenceInputError(
                f"rule {message['slow']}: one search took {message['seconds']} s on an adversarial line "
                f"({message['line']}): catastrophic backtracking",
                hint="make the repetitions unambiguous and anchor the pattern on a literal",
            )
        elif "line" in message:
            trying = str(message["line"])
        elif "end" in message:
            return str(summary.get("version")), int(summary.get("rules", 0))
    reason = proc.stderr.read().decode(errors="replace").strip().splitlines()
    raise DefenceError(f"the rules check failed: {reason[-1] if reason else f'exit code {proc.wait()}'}")


def _lines(proc: subprocess.Popen[bytes], deadline: list[float]) -> Iterator[dict[str, Any] | None]:
    """The probe's messages; None once ``deadline[0]`` (monotonic) passes with no line; ends at its stdout's end.
    Read from the file descriptor itself: a buffered reader could hold lines that ``select`` no longer sees."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline[0] - time.monotonic()
            if left <= 0 or not selector.select(timeout=left):
                yield None
                return
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    yield message


# ------------------------------------------------------------------------------------------------ blocklist
def parse_expiry(value: object, now: _dt.datetime, where: str) -> _dt.datetime:
    """An RFC 3339 time, a ``datetime``, or a duration from now (``90m``, ``12h``, ``7d``, ``2w``)."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise DefenceInputError(f"{where}: the expiry has no time zone")
        return value.astimezone(_dt.UTC).replace(microsecond=0)
    if isinstance(value, str):
        match = DURATION_RE.match(value.strip())
        if match:
            return (now + _dt.timedelta(seconds=int(match[1]) * UNITS[match[2]])).replace(microsecond=0)
    try:
        return parse_stamp(value, where).replace(microsecond=0)
    except DefenceError as exc:
        raise DefenceInputError(f"{exc.message}, or a duration such as 7d") from None


def parse_blocklist(entries: Sequence[Mapping[str, Any]], now: _dt.datetime) -> tuple[BlocklistEntry, ...]:
    """The entries in canonical form, sorted; each entry's problem is named by its index and net."""
    if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
        raise DefenceInputError("blocklist: must be a list of {net, expires, comment}")
    if len(entries) > MAX_ENTRIES:
        raise DefenceInputError(f"blocklist: at most {MAX_ENTRIES} entries, got {len(entries)}")
    parsed: list[tuple[Network, BlocklistEntry, str]] = []
    for i, raw in enumerate(entries):
        where = f"blocklist[{i}]"
        if not isinstance(raw, Mapping):
            raise DefenceInputError(f"{where}: must be a mapping {{net, expires, comment}}")
        extra = sorted(set(raw) - {*ENTRY_KEYS, "expires"})
        if extra:
            raise DefenceInputError(f"{where}: unknown key {extra[0]!r} (keys: net, expires, comment)")
        net = _network(raw.get("net"), where)
        where = f"{where} ({net})"
        if ("expires" in raw) == ("expires_at" in raw):
            raise DefenceInputError(f"{where}: give its expiry, as 'expires' (a time or a duration such as 7d)")
        expires = parse_expiry(raw.get("expires", raw.get("expires_at")), now, where)
        if expires <= now:
            raise DefenceInputError(f"{where}: expires {expires.isoformat()} is not in the future")
        if expires - now > MAX_EXPIRY:
            raise DefenceInputError(f"{where}: expires more than {MAX_EXPIRY.days} days from now")
        comment = raw.get("comment")
        if comment is not None and (
            not isinstance(comment, str) or len(comment) > MAX_COMMENT or not comment.isprintable()
        ):
            raise DefenceInputError(f"{where}: comment must be one line of at most {MAX_COMMENT} characters")
        parsed.append((net, BlocklistEntry(str(net), expires, comment or None), where))
    parsed.sort(key=lambda p: (p[0].version, p[0].network_address, p[0].prefixlen))
    _check_overlaps(parsed)
    return tuple(entry for _, entry, _ in parsed)


def _check_overlaps(parsed: list[tuple[Network, BlocklistEntry, str]]) -> None:
    """Sorted by family and address, two CIDR networks overlap only when one holds the other, and a network inside
    an earlier one may sit after others inside it too: each entry is compared with the one reaching furthest so far
    of its family (by the integer value of the last address), not only with its neighbour."""
    widest: dict[int, tuple[Network, str]] = {}
    for net, _, where in parsed:
        seen = widest.get(net.version)
        if seen is not None and int(net.network_address) <= int(seen[0].broadcast_address):
            what = "repeats" if net == seen[0] else "overlaps"
            raise DefenceInputError(f"{where} {what} {seen[1]}", hint="list each network once")
        if seen is None or int(net.broadcast_address) > int(seen[0].broadcast_address):
            widest[net.version] = (net, where)


def _network(value: object, where: str) -> Network:
    if not isinstance(value, str):
        raise DefenceInputError(f"{where}: net must be an address or network such as 203.0.113.0/24")
    try:
        net = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise DefenceInputError(
            f"{where}: net {value!r}: {exc}", hint="host bits must be zero: 203.0.113.0/24"
        ) from None
    if net.prefixlen < MIN_PREFIX[net.version]:
        raise DefenceInputError(
            f"{where}: net {net} is wider than /{MIN_PREFIX[net.version]}: a pack never blocks that much of the "
            "internet"
        )
    for reserved, what in RESERVED:
        if net.version == reserved.version and net.overlaps(reserved):
            raise DefenceInputError(f"{where}: net {net} covers {what} ({reserved})")
    return net


# ------------------------------------------------------------------------------------------------ protected
def protected_networks(settings: Settings) -> list[tuple[Network, str]]:
    """What no pack may block: every client's management networks, and the collector's address."""
    found: list[tuple[Network, str]] = []
    try:
        inventories = clients.list_clients(settings)
    except OrchestratorError as exc:
        raise DefenceError(
            f"cannot read the client inventories to protect their management networks: {exc.message}",
            hint=exc.hint,
        ) from None
    for inv in inventories:
        for host in inv.hosts:
            for net in host_vars(inv, host.name).get("sentry_mgmt_networks") or ():
                try:
                    found.append(
                        (ipaddress.ip_network(str(net), strict=False), f"a management network of {inv.client}")
                    )
                except ValueError:
                    raise DefenceError(f"client {inv.client}: management network {net!r} is not a network") from None
    for address in _collector_addresses(settings):
        found.append((ipaddress.ip_network(address), "the collector's address"))
    return list(dict.fromkeys(found))


def _collector_addresses(settings: Settings) -> list[str]:
    conf = collector_dir(settings) / CONFIG_FILE
    if not conf.is_file():
        return []  # no collector here: nothing for agents to reach
    try:
        data = json.loads(conf.read_text(encoding="utf-8"))
        host = urlsplit(str(data.get("url") or "")).hostname
    except (OSError, ValueError) as exc:
        raise DefenceError(f"cannot read {conf} to protect the collector's address: {exc}") from None
    if not host:
        return []
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return _resolve(host)


def _resolve(name: str) -> list[str]:
    """The addresses of the collector's name, within :data:`RESOLVE_SECONDS` (the resolver has no timeout of its
    own: it runs in a daemon thread that is left behind if it hangs)."""
    result: list[str] = []

    def lookup() -> None:
        try:
            result.extend(sorted({str(info[4][0]) for info in socket.getaddrinfo(name, None)}))
        except OSError:
            pass

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(RESOLVE_SECONDS)
    if not result:
        raise DefenceError(
            f"cannot resolve the collector's name {name!r} to check that no blocklist entry covers it",
            hint="fix name resolution, or use an IP address in the collector URL",
        )
    return result


def check_protected(blocklist: Sequence[BlocklistEntry], protected: Sequence[tuple[Network, str]]) -> None:
    for entry in blocklist:
        net = ipaddress.ip_network(entry.net)
        for guarded, what in protected:
            if net.version == guarded.version and net.overlaps(guarded):
                raise DefenceInputError(
                    f"blocklist entry {entry.net} covers {what} ({guarded})",
                    hint="a pack must never cut Sentry off from a host: narrow or drop the entry",
                )
