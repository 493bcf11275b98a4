"""Sending one page through Apprise, bounded in time.

Every Apprise URL gets connect and read timeouts (its ``cto`` / ``rto`` URL arguments, 4 s each by default in
Apprise's URLBase; set here explicitly unless the URL already carries them), so a receiver that accepts and never
answers cannot hold the engine. Apprise keeps its persistent store in memory only (nothing written under the
collector's home). URLs are secrets: they are never logged or stored; errors name the target, not the URL.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlsplit

import apprise

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0


def bounded(url: str, timeout: float = TIMEOUT_S) -> str:
    """``url`` with ``cto`` and ``rto`` set to ``timeout`` unless it already names them."""
    have = {k for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    extra = [f"{k}={timeout:g}" for k in ("cto", "rto") if k not in have]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


def send(urls: Sequence[str], title: str, body: str, *, timeout: float = TIMEOUT_S) -> str | None:
    """Deliver to every URL; None when all took it, else one line saying why not (without the URLs)."""
    notifier = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
    for index, url in enumerate(urls):
        if not notifier.add(bounded(url, timeout)):
            return f"target URL {index + 1} is not a URL Apprise understands"
    if not len(notifier):
        return "no target URL"
    if not notifier.notify(title=title, body=body):
        return "the receiver did not take the page (Apprise reported a failure)"
    return None
