"""The collector watches itself: a dead-man heartbeat to an outside target every N seconds, so a collector that
dies (and so can no longer page anyone) also reaches a person: the outside service (a healthchecks-style URL, or
any Apprise target) alarms when the pings stop.

``deadman_url`` in collector.json: ``http(s)://...`` is pinged with a plain GET; anything else is an Apprise URL
and gets a short notification. Each ping is bounded in time. The URL may hold a token: it is never logged.
"""

from __future__ import annotations

import logging
import urllib.request

from ..incidents import notify

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0


def ping(url: str, timeout: float = TIMEOUT_S) -> str | None:
    """One heartbeat; None when the target took it, else why not (without the URL)."""
    if url.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - the scheme is checked
                return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except OSError as exc:
            return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    return notify.send([url], "sentry collector alive", "The Sentry collector is running.", timeout=timeout)


def beat(url: str) -> None:
    error = ping(url)
    if error is not None:
        log.warning("dead-man heartbeat not delivered: %s", error)
