"""The pack state machine: which detection pack is in effect, the last-known-good, and what was refused.

Only the daemon's loop thread changes it (the poller hands packs over through :class:`PackInbox`), so a swap
happens between two polls of the log sources, never in the middle of one. States (``pack_status``):

- ``none``: the release's own rules, no pack blocklist;
- ``active``: ``active`` is in effect (its rules, or the release's when it has none, and its blocklist);
- ``reverted``: a pack failed (its rules carry ``"self_test": "fail"``, its detector raised, or its blocklist
  could not be applied) and what was in effect before it is back (``previous``, or the release's rules);
- ``refused``: a pack did not verify (digest, signature, content); nothing of it was applied.

Transitions: :meth:`PackState.activate`, :meth:`PackState.refuse`, :meth:`PackState.revert`,
:meth:`PackState.drop` (assignment null) and :meth:`PackState.resume` (agent start). Each returns a
:class:`Change` when what is in effect changed, so the daemon swaps the detector and writes a ``pack``
heartbeat.

Persistence under ``pack_dir``: ``active.json`` and ``previous.json`` (version, digest, the signed bytes and the
signature, base64) and ``state.json`` (status, error, refused digest); each written to a temporary file, fsync'ed,
renamed over the old one, and the directory fsync'ed, so a crash leaves the old or the new file, never a torn
one. A restarted agent verifies the stored packs again (:func:`~sentry_agent.packs.check_pack`) before using them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .blocklist import BlocklistError, NftBlocklist
from .config import AgentConfig
from .packs import Pack, PackError, check_pack
from .rules import RuleSet

__all__ = ["Change", "PackInbox", "PackState", "PackStore"]

log = logging.getLogger(__name__)

STATUSES = ("none", "active", "reverted", "refused")


@dataclass(frozen=True)
class Change:
    """What is in effect after a transition: the rules (release's when the pack has none) and why."""

    rules: RuleSet
    rules_digest: str | None
    reason: str


class PackStore:
    """The files under ``pack_dir``; every write atomic and durable."""

    def __init__(self, pack_dir: Path) -> None:
        self.dir = pack_dir

    def _write(self, name: str, data: dict[str, Any] | None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        path = self.dir / name
        if data is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            tmp = path.with_name(name + ".tmp")
            with open(tmp, "wb") as fh:
                fh.write(json.dumps(data, sort_keys=True).encode())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself survives a crash only once the directory is on disk
        finally:
            os.close(fd)

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def save_pack(self, slot: str, pack: Pack | None) -> None:
        data = None
        if pack is not None:
            data = {
                "version": pack.version,
                "digest": pack.digest,
                "content": base64.b64encode(pack.content).decode(),
                "signature": base64.b64encode(pack.signature).decode(),
            }
        self._write(f"{slot}.json", data)

    def load_pack(self, slot: str) -> tuple[str, str, bytes, bytes] | None:
        """(version, digest, content, signature) as stored, not verified; None when absent or unreadable."""
        data = self._read(f"{slot}.json")
        try:
            assert data is not None
            return (
                str(data["version"]),
                str(data["digest"]),
                base64.b64decode(data["content"], validate=True),
                base64.b64decode(data["signature"], validate=True),
            )
        except (AssertionError, KeyError, ValueError, TypeError):
            return None

    def save_status(self, status: str, error: str | None, refused: str | None) -> None:
        self._write("state.json", {"status": status, "error": error, "refused_digest": refused})

    def load_status(self) -> dict[str, Any]:
        return self._read("state.json") or {}


class PackInbox:
    """The poller's hand-over to the loop: the latest verdict only (a newer one replaces an unread older one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: tuple[str, Any] | None = None

    def put(self, kind: str, value: Any = None) -> None:
        with self._lock:
            self._item = (kind, value)

    def take(self) -> tuple[str, Any] | None:
        with self._lock:
            item, self._item = self._item, None
            return item


class PackState:
    def __init__(
        self,
        config: AgentConfig,
        release_rules: RuleSet,
        release_digest: str | None,
        *,
        blocklist: NftBlocklist | None,
        wall_clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.release_rules, self.release_digest = release_rules, release_digest
        self.blocklist = blocklist
        self._wall = wall_clock
        self.store = PackStore(config.pack_dir)
        self._lock = threading.Lock()  # the poller and the heartbeat read what the loop writes
        self.active: Pack | None = None
        self.previous: Pack | None = None
        self.status = "none"
        self.error: str | None = None
        self.refused_digest: str | None = None

    # -- read side (any thread) ----------------------------------------------------------------------------

    def known(self) -> tuple[str | None, str | None]:
        """(active digest, last refused or reverted digest): the poller fetches neither again."""
        with self._lock:
            return (self.active.digest if self.active else None), self.refused_digest

    def fields(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pack_version": self.active.version if self.active else None,
                "pack_digest": self.active.digest if self.active else None,
                "pack_status": self.status,
                "pack_error": self.error,
                "pack_refused_digest": self.refused_digest,
            }

    def in_effect(self) -> Change:
        pack = self.active
        if pack is None or pack.rules is None:
            return Change(self.release_rules, self.release_digest, "release rules")
        return Change(pack.rules, pack.rules_digest, f"rules of pack {pack.version}")

    # -- transitions (the loop thread) ---------------------------------------------------------------------

    def _set(
        self, active: Pack | None, previous: Pack | None, status: str, error: str | None, refused: str | None
    ) -> None:
        with self._lock:
            self.active, self.previous = active, previous
            self.status, self.error, self.refused_digest = status, error, refused
        try:
            self.store.save_pack("active", active)
            self.store.save_pack("previous", previous)
            self.store.save_status(status, error, refused)
        except OSError as exc:  # the pack is in effect anyway; only a restart would not resume it
            log.error("cannot persist the pack state under %s: %s", self.store.dir, exc.strerror or exc)

    def _swap_blocklist(self, new: Pack | None, old: Pack | None) -> None:
        if self.blocklist is None:
            return  # ban_command_enabled is false: recorded, not applied
        self.blocklist.apply(new.blocklist if new else (), [e.net for e in old.blocklist] if old else [], self._wall())

    def activate(self, pack: Pack) -> Change | None:
        """Put a verified pack into effect; reverts it instead when it fails on the way."""
        if pack.rules is not None and pack.rules.self_test_fail:
            return self._reverted(pack, f'pack {pack.version} reverted: its rules carry "self_test": "fail"', False)
        try:
            self._swap_blocklist(pack, self.active)
        except BlocklistError as exc:
            return self._reverted(pack, f"pack {pack.version} reverted: blocklist not applied: {exc}", False)
        self._set(pack, self.active, "active", self.error, self.refused_digest)
        log.warning("pack %s active (%s)", pack.version, self.in_effect().reason)
        return self.in_effect()

    def refuse(self, version: str, digest: str, reason: str) -> Change:
        log.error("%s", reason)
        status = "refused"
        self._set(self.active, self.previous, status, _line(reason), digest)
        return self.in_effect()

    def revert(self, reason: str) -> Change:
        """The active pack failed while in effect: back to the last-known-good (or the release's rules)."""
        failed = self.active
        assert failed is not None
        return self._reverted(failed, reason, True)

    def _reverted(self, failed: Pack, reason: str, applied: bool) -> Change:
        log.error("%s", reason)
        if applied:
            back = self.previous
            try:
                self._swap_blocklist(back, failed)
            except BlocklistError as exc:
                log.error("reverting pack %s: blocklist: %s", failed.version, exc)
            self._set(back, None, "reverted", _line(reason), failed.digest)
        else:
            self._set(self.active, self.previous, "reverted", _line(reason), failed.digest)
        return self.in_effect()

    def drop(self) -> Change | None:
        """Assignment null: the release's rules, the pack's blocklist entries removed."""
        if self.active is None and self.status == "none":
            return None
        try:
            self._swap_blocklist(None, self.active)
        except BlocklistError as exc:
            log.error("dropping pack: blocklist entries not removed: %s", exc)
        dropped = self.active.version if self.active else None
        self._set(None, None, "none", self.error, self.refused_digest)
        log.warning("pack %s dropped: release rules in effect", dropped)
        return self.in_effect()

    def resume(self) -> Change | None:
        """At start: the stored active pack (and last-known-good), verified again, back in effect."""
        state = self.store.load_status()
        refused = state.get("refused_digest")
        self.refused_digest = refused if isinstance(refused, str) else None
        self.error = state.get("error") if isinstance(state.get("error"), str) else None
        self.previous = self._load("previous")
        stored = self.store.load_pack("active")
        if stored is None:
            self.status = "reverted" if state.get("status") == "reverted" else "none"
            return None
        try:
            pack = self._verify(stored)
        except PackError as exc:
            return self.refuse(stored[0], stored[1], f"stored pack {stored[0]} refused at start: {exc}")
        try:
            self._swap_blocklist(pack, None)
        except BlocklistError as exc:
            log.error("resuming pack %s: blocklist: %s", pack.version, exc)
        status = state.get("status") if state.get("status") in ("active", "reverted") else "active"
        self._set(pack, self.previous, str(status), self.error, self.refused_digest)
        log.info("pack %s resumed (%s)", pack.version, self.in_effect().reason)
        return self.in_effect()

    def _load(self, slot: str) -> Pack | None:
        stored = self.store.load_pack(slot)
        if stored is None:
            return None
        try:
            return self._verify(stored)
        except PackError as exc:
            log.error("stored %s pack %s ignored: %s", slot, stored[0], exc)
            return None

    def _verify(self, stored: tuple[str, str, bytes, bytes]) -> Pack:
        version, digest, content, signature = stored
        return check_pack(
            content,
            signature,
            digest=digest,
            version=version,
            public_key=self.config.pack_public_key,
            overrides=self.config.rule_overrides,
            never_ban=self.config.never_ban,
        )


def _line(text: str) -> str:
    return " ".join(text.split())[:500]
