"""Pack polling: asks the collector which detection pack this host should run, fetches and verifies it.

Its own thread (``sentry-packs``), every ``pack_poll_seconds``:

1. ``GET /v1/defence/assignment?host=<host>`` -> ``{"host", "version", "digest"}``; version null: no pack.
2. On a digest different from the active one and from the last refused one (the state machine's
   :meth:`~sentry_agent.packstate.PackState.known`): ``GET /v1/defence/packs/<version>`` (the pack.json
   bytes, the signature base64 in ``X-Sentry-Pack-Signature``), then
   :func:`~sentry_agent.packs.check_pack` against the assignment's digest and ``pack_public_key``.
3. The verdict goes to the daemon's loop through a :class:`~sentry_agent.packstate.PackInbox`: ``activate``
   (a verified pack), ``refuse`` (forged, altered, invalid) or ``drop`` (assignment null). The loop applies it
   between two polls of the log sources.

Every call goes over the shipper's kind of pinned connection (:class:`~sentry_agent.transport.HttpsTransport`,
a connection of its own) and is bounded by ``collector_timeout_seconds``; the collector being unreachable is
logged once per distinct problem and retried at the next poll, never a refusal.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import AgentConfig
from .packs import MAX_BLOCKLIST, VERSION_RE, PackError, check_pack
from .packstate import PackInbox
from .transport import HttpsTransport, TransportError, error_text

__all__ = ["Assignment", "PackClient", "PackPoller", "PollError"]

log = logging.getLogger(__name__)

ASSIGNMENT_PATH = "/v1/defence/assignment"
PACKS_PATH = "/v1/defence/packs/"
# 10000 blocklist entries with comments and a rules file stay well under this.
MAX_PACK_BYTES = MAX_BLOCKLIST * 400 + 1024 * 1024
_DIGEST_RE = re.compile(r"^[0-9a-f]{64}\Z")


class PollError(Exception):
    """The collector did not give a usable answer (unreachable, not the pinned one, an error status)."""


@dataclass(frozen=True)
class Assignment:
    version: str | None
    digest: str | None


class PackClient:
    """The two collector routes; ``transport`` is an :class:`HttpsTransport` (or a test double with ``get``)."""

    def __init__(self, config: AgentConfig, transport: Any = None) -> None:
        self.config = config
        if transport is None:
            host, port = config.collector_address
            transport = HttpsTransport(
                host, port, config.collector_cert_sha256, config.collector_token, config.collector_timeout_seconds
            )
        self.transport = transport

    def _get(self, path: str, max_bytes: int) -> tuple[dict[str, str], bytes]:
        try:
            status, headers, body = self.transport.get(path, max_bytes=max_bytes)
        except TransportError as exc:
            raise PollError(str(exc)) from None
        if status != 200:
            raise PollError(f"GET {path.split('?', maxsplit=1)[0]}: collector answered {status}: {error_text(body)}")
        return headers, body

    def assignment(self) -> Assignment:
        query = urllib.parse.urlencode({"host": self.config.host})
        _, body = self._get(f"{ASSIGNMENT_PATH}?{query}", 64 * 1024)
        try:
            data = json.loads(body)
        except ValueError:
            raise PollError("assignment answer is not JSON") from None
        version = data.get("version") if isinstance(data, dict) else None
        digest = data.get("digest") if isinstance(data, dict) else None
        if version is None:
            return Assignment(None, None)
        if not (isinstance(version, str) and VERSION_RE.match(version)):
            raise PollError(f"assignment names no valid pack version: {version!r}")
        if not (isinstance(digest, str) and _DIGEST_RE.match(digest)):
            raise PollError(f"assignment of pack {version} has no valid digest")
        return Assignment(version, digest)

    def pack(self, version: str) -> tuple[bytes, bytes]:
        """(pack.json bytes, signature bytes); the signature header missing or not base64 is a PackError."""
        headers, body = self._get(PACKS_PATH + urllib.parse.quote(version, safe=""), MAX_PACK_BYTES)
        raw = headers.get("x-sentry-pack-signature", "")
        try:
            signature = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        if len(signature) != 64:
            raise PackError(f"pack {version} refused: no valid X-Sentry-Pack-Signature header")
        return body, signature

    def close(self) -> None:
        self.transport.close()


class PackPoller:
    def __init__(
        self,
        config: AgentConfig,
        inbox: PackInbox,
        known: Callable[[], tuple[str | None, str | None]],
        *,
        client: PackClient | None = None,
    ) -> None:
        self.config, self.inbox, self._known = config, inbox, known
        self.client = client or PackClient(config)
        self.last_error: str | None = None
        self._offered: str | None = None  # digest handed over and not yet known to the state machine
        self._dropped = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> str:
        """One poll; what it did, for tests and debug logs."""
        try:
            assigned = self.client.assignment()
        except PollError as exc:
            return self._failed(str(exc))
        active, refused = self._known()
        if assigned.version is None or assigned.digest is None:
            self._offered = None
            if active is None and self._dropped:
                return "none"
            self._dropped = True
            self.inbox.put("drop")
            return "drop"
        self._dropped = False
        if assigned.digest in (active, refused, self._offered):
            return "unchanged"
        try:
            content, signature = self.client.pack(assigned.version)
            pack = check_pack(
                content,
                signature,
                digest=assigned.digest,
                version=assigned.version,
                public_key=self.config.pack_public_key,
                overrides=self.config.rule_overrides,
                never_ban=self.config.never_ban,
            )
        except PollError as exc:
            return self._failed(str(exc))
        except PackError as exc:
            self._offered = assigned.digest
            self.inbox.put("refuse", (assigned.version, assigned.digest, str(exc)))
            return "refuse"
        self._offered = assigned.digest
        self.inbox.put("activate", pack)
        self.last_error = None
        return "activate"

    def _failed(self, message: str) -> str:
        if message != self.last_error:  # once per distinct problem, not once per poll
            log.warning("pack poll: %s (trying again in %gs)", message, self.config.pack_poll_seconds)
        self.last_error = message
        return "error"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sentry-packs", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the thread must outlive anything one poll hits
                log.exception("pack poll failed: %s", exc)
            self._stop.wait(self.config.pack_poll_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # Bounded: a poll in progress ends within two network timeouts (assignment, pack).
            self._thread.join(timeout=2 * self.config.collector_timeout_seconds + 1)
            self._thread = None
        self.client.close()
