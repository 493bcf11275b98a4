"""Defence pushes in the ledger: each push of a pack with its plan, state and per-host state; one push at a time per
client (a lock row per client, recovered from a dead holder exactly as rollout locks are: the same staleness rule,
:func:`~orchestrator.ledger.locks.lock_is_stale`); and the lock
rows. The telemetry the push gates read and the collective-defence proposals are :mod:`.defence_signals`.

Every change is one transaction with its events: ``defence.push_created`` and ``defence.push_state`` (once per
client of the push), ``defence.push_host`` (client, host), ``defence.push_lock_acquired|recovered|released``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import lockrows
from .base import LedgerMixin, json_object, names, required
from .chain import utc_stamp
from .defence_models import DefencePush, DefencePushLock
from .errors import LedgerError
from .records import RolloutLockRecord

# Where a push may go from each state. running -> running is a resume; waiting_window -> running a window that
# opened; the kill switch (reverted) ends any live push. The final states go nowhere.
PUSH_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "planned": frozenset(("running", "reverted", "aborted")),
    "running": frozenset(("running", "completed", "halted", "waiting_window", "reverted", "aborted")),
    "waiting_window": frozenset(("running", "reverted", "aborted")),
    "completed": frozenset(),
    "halted": frozenset(),
    "reverted": frozenset(),
    "aborted": frozenset(),
}
FINAL_PUSH_STATES = frozenset(s for s, nexts in PUSH_TRANSITIONS.items() if not nexts)


@dataclass(frozen=True)
class PushRecord:
    uid: str
    version: str
    digest: str
    clients: tuple[str, ...]
    state: str
    emergency_reason: str | None
    dwell_override_seconds: int | None
    plan: Mapping[str, Any]
    hosts: Mapping[str, Mapping[str, Any]]  # "client/host" -> {wave, state, assigned_at, confirmed_at, why, ...}
    halt_reason: str | None
    actor: str
    created_at: _dt.datetime
    updated_at: _dt.datetime
    finished_at: _dt.datetime | None
    detail: Mapping[str, Any]


def host_key(client: str, host: str) -> str:
    return f"{client}/{host}"


class DefencePushesMixin(LedgerMixin):
    """Defence pushes and their locks; part of :class:`~orchestrator.ledger.store.Ledger`."""

    # ------------------------------------------------------------------------------------------- pushes

    def create_push(
        self,
        uid: str,
        *,
        version: str,
        digest: str,
        clients: Sequence[str],
        plan: Mapping[str, Any],
        hosts: Mapping[str, Mapping[str, Any]],
        emergency_reason: str | None = None,
        dwell_override_seconds: int | None = None,
        actor: str | None = None,
    ) -> PushRecord:
        """Record a planned push (state ``planned``); one ``defence.push_created`` event per client."""
        required(uid, "a push uid")
        required(version, f"the pack version of push {uid}")
        wanted = names(clients, f"the clients of push {uid}")
        if emergency_reason is not None:
            required(emergency_reason, f"the emergency reason of push {uid} (or None)")
        body = json_object(plan, f"plan of push {uid}")
        rows = json_object(hosts, f"hosts of push {uid}")
        with self._write(actor) as tx:
            if _find(tx.session, uid) is not None:
                raise LedgerError(f"push {uid!r} is already in the ledger")
            for client in wanted:
                self._require_client(tx.session, client)
            push = DefencePush(
                uid=uid,
                version=version,
                digest=digest,
                clients=wanted,
                state="planned",
                emergency_reason=emergency_reason,
                dwell_override_seconds=dwell_override_seconds,
                plan=body,
                hosts=rows,
                halt_reason=None,
                actor=tx.actor,
                created_at=tx.now,
                updated_at=tx.now,
                finished_at=None,
                detail={},
            )
            tx.session.add(push)
            tx.session.flush()
            for client in sorted(wanted):
                mine = {k: v for k, v in rows.items() if k.split("/", 1)[0] == client}
                tx.append(
                    "defence.push_created",
                    client,
                    uid,
                    {
                        "version": version,
                        "digest": digest,
                        "clients": wanted,
                        "emergency_reason": emergency_reason,
                        "dwell_override_seconds": dwell_override_seconds,
                        "hosts": mine,
                    },
                )
            return _record(push)

    def push(self, uid: str) -> PushRecord | None:
        with self._read() as session:
            found = _find(session, uid)
            return None if found is None else _record(found)

    def pushes(self, client: str | None = None, limit: int = 20) -> list[PushRecord]:
        """The newest pushes first; with ``client``, only those that include it."""
        with self._read() as session:
            rows = session.scalars(select(DefencePush).order_by(DefencePush.id.desc())).all()
            found = [_record(r) for r in rows if client is None or client in r.clients]
            return found[: max(limit, 0)]

    def set_push_state(
        self,
        uid: str,
        state: str,
        detail: Mapping[str, Any] | None = None,
        *,
        halt_reason: str | None = None,
        actor: str | None = None,
    ) -> PushRecord:
        """Move the push to ``state`` if allowed (``PUSH_TRANSITIONS``); ``detail`` merged in; one
        ``defence.push_state`` event per client."""
        if state not in PUSH_TRANSITIONS:
            raise LedgerError(f"unknown push state {state!r}", hint=f"use one of {', '.join(sorted(PUSH_TRANSITIONS))}")
        body = json_object(detail or {}, f"detail of push {uid}")
        with self._write(actor) as tx:
            push = _require(tx.session, uid)
            before = push.state
            if state not in PUSH_TRANSITIONS[before]:
                raise LedgerError(f"push {uid} cannot go from {before} to {state}", hint=f"it is {before}")
            push.state = state
            push.updated_at = tx.now
            if body:
                push.detail = {**push.detail, **body}
            if halt_reason is not None:
                push.halt_reason = halt_reason
            if state in FINAL_PUSH_STATES:
                push.finished_at = tx.now
            for client in sorted(push.clients):
                tx.append(
                    "defence.push_state",
                    client,
                    uid,
                    {"from": before, "to": state, "detail": body, "halt_reason": halt_reason},
                )
            tx.session.flush()
            return _record(push)

    def set_push_hosts(
        self, uid: str, updates: Mapping[str, Mapping[str, Any]], *, actor: str | None = None
    ) -> PushRecord:
        """Merge ``updates`` (``"client/host"`` -> fields) into the push's per-host state; one
        ``defence.push_host`` event per host that changed. A final push changes no more."""
        body = json_object(updates, f"host updates of push {uid}")
        with self._write(actor) as tx:
            push = _require(tx.session, uid)
            if push.state in FINAL_PUSH_STATES:
                raise LedgerError(f"push {uid} is {push.state}; its hosts can no longer change")
            hosts = dict(push.hosts)
            for key, fields in sorted(body.items()):
                if key not in hosts:
                    raise LedgerError(f"host {key!r} is not in push {uid}")
                merged = {**hosts[key], **fields}
                if merged == hosts[key]:
                    continue
                hosts[key] = merged
                client, host = key.split("/", 1)
                tx.append("defence.push_host", client, host, {"push": uid, **fields})
            push.hosts = hosts
            push.updated_at = tx.now
            tx.session.flush()
            return _record(push)

    # ------------------------------------------------------------------------------------------- locks

    def acquire_push_locks(
        self,
        clients: Sequence[str],
        push_uid: str,
        *,
        holder_host: str,
        holder_pid: int,
        is_stale: Callable[[RolloutLockRecord], bool],
        actor: str | None = None,
    ) -> list[str]:
        """Lock every one of ``clients`` for push ``push_uid``, or none: the rules of
        :meth:`~orchestrator.ledger.locks.RolloutLocksMixin.acquire_rollout_locks` (a lock whose push is final or
        whose holder ``is_stale`` is taken over; a live one refuses with :class:`PushLocked`). Returns the
        clients recovered."""
        wanted = names(clients, f"the clients to lock for push {push_uid}")
        required(holder_host, "the host name of a push lock holder")
        with self._write(actor) as tx:
            push = _require(tx.session, push_uid)
            if push.state in FINAL_PUSH_STATES:
                raise LedgerError(f"push {push_uid} is {push.state}; a finished push takes no locks")
            return lockrows.take(tx, PUSH_LOCKS, wanted, push_uid, holder_host, holder_pid, is_stale)

    def heartbeat_push_locks(self, push_uid: str, *, holder_host: str, holder_pid: int) -> list[str]:
        """Mark this holder's locks of ``push_uid`` alive (no event); none held raises RolloutLockGone."""
        with self._write(None) as tx:
            return lockrows.beat(tx, PUSH_LOCKS, push_uid, holder_host, holder_pid)

    def release_push_locks(self, push_uid: str, *, actor: str | None = None) -> list[str]:
        with self._write(actor) as tx:
            return lockrows.release(tx, PUSH_LOCKS, push_uid)

    def push_locks(self) -> list[RolloutLockRecord]:
        """Every push lock held now (as the rollout lock record: ``rollout_uid`` names the push)."""
        with self._read() as session:
            return lockrows.held(session, PUSH_LOCKS)


class PushLocked(LedgerError):
    """Raised when a client is held by another push whose holder is alive."""

    def __init__(self, locks: list[RolloutLockRecord]) -> None:
        lock = locks[0]
        super().__init__(
            f"client {lock.client!r} is locked by push {lock.rollout_uid} (host {lock.holder_host}, "
            f"pid {lock.holder_pid}) since {utc_stamp(lock.acquired_at)}",
            hint=(
                f"see 'sentryctl defence status {lock.rollout_uid}'; if that process is dead, carry it on: "
                f"'sentryctl defence push --resume {lock.rollout_uid}'"
            ),
        )
        self.locks = tuple(locks)


def _find(session: Session, uid: str) -> DefencePush | None:
    return session.scalars(select(DefencePush).where(DefencePush.uid == uid)).first()


def _require(session: Session, uid: str) -> DefencePush:
    found = _find(session, uid)
    if found is None:
        raise LedgerError(f"push {uid!r} is not in the ledger", hint="list them with 'sentryctl defence status'")
    return found


def _record(p: DefencePush) -> PushRecord:
    return PushRecord(
        uid=p.uid,
        version=p.version,
        digest=p.digest,
        clients=tuple(p.clients),
        state=p.state,
        emergency_reason=p.emergency_reason,
        dwell_override_seconds=p.dwell_override_seconds,
        plan=dict(p.plan),
        hosts={k: dict(v) for k, v in p.hosts.items()},
        halt_reason=p.halt_reason,
        actor=p.actor,
        created_at=p.created_at,
        updated_at=p.updated_at,
        finished_at=p.finished_at,
        detail=dict(p.detail),
    )


PUSH_LOCKS = lockrows.LockTable(
    model=DefencePushLock,
    owner_column="push_uid",
    owner_model=DefencePush,
    final_states=FINAL_PUSH_STATES,
    events="defence.push_lock_",
    noun="push",
    locked=PushLocked,
    gone_hint="another controller may have taken it over; see 'sentryctl defence status {uid}'",
)
