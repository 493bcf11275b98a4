"""The one lock mechanism, for every kind of work that must run once per client at a time: rollouts (agent
releases, :mod:`.locks`) and defence pushes (packs, :mod:`.defence_pushes`).

A lock is a row per client naming its owner (a rollout or a push) and the process that holds it. The rules are the
same for both, so they live here once, over a :class:`LockTable` that names the tables and events of a kind:

- taking is all or nothing in one writing transaction (writers are serialized by the chain's write lock): a lock
  the same holder already has is kept, one whose owner is final or whose holder ``is_stale`` says is dead is taken
  over (an event naming the previous holder), a live one refuses the whole call;
- a heartbeat marks the holder's locks alive (no event); holding none means the holder lost them;
- releasing deletes the owner's locks, one event each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from .chain import utc_stamp
from .errors import RolloutLockGone
from .records import RolloutLockRecord

IsStale = Callable[[RolloutLockRecord], bool]


@dataclass(frozen=True)
class LockTable:
    """One kind of lock: its row model (``client``, the owner column, ``holder_host``, ``holder_pid``,
    ``acquired_at``, ``heartbeat_at``), the owner's model (``uid``, ``state``), and how its events read."""

    model: Any
    owner_column: str  # "rollout_uid", "push_uid"
    owner_model: Any
    final_states: frozenset[str]
    events: str  # prefix of the event kinds: "rollout.lock_", "defence.push_lock_"
    noun: str  # "rollout", "push": in messages
    locked: Callable[[list[RolloutLockRecord]], Exception]  # the error naming the live holders
    gone_hint: str  # what to look at when a holder lost its locks; {uid} is the owner

    def owner(self, lock: Any) -> str:
        return str(getattr(lock, self.owner_column))

    def record(self, lock: Any) -> RolloutLockRecord:
        """A lock of any kind as the one record the staleness rule (``lock_is_stale``) judges; ``rollout_uid``
        names its owner."""
        return RolloutLockRecord(
            client=lock.client,
            rollout_uid=self.owner(lock),
            holder_host=lock.holder_host,
            holder_pid=lock.holder_pid,
            acquired_at=lock.acquired_at,
            heartbeat_at=lock.heartbeat_at,
        )


def take(
    tx: Any, table: LockTable, wanted: Sequence[str], uid: str, host: str, pid: int, is_stale: IsStale
) -> list[str]:
    """Lock every one of ``wanted`` for owner ``uid`` inside the writing transaction ``tx``, or none of them;
    returns the clients taken over. ``is_stale`` runs inside the transaction: quick, and no ledger use."""
    model = table.model
    held = {lock.client: lock for lock in tx.session.scalars(select(model).where(model.client.in_(wanted)))}
    owners = sorted({table.owner(lock) for lock in held.values()})
    query = select(table.owner_model.uid, table.owner_model.state).where(table.owner_model.uid.in_(owners))
    states: dict[str, str] = {owner: state for owner, state in tx.session.execute(query)}
    takeovers: dict[str, str] = {}
    blocking: list[RolloutLockRecord] = []
    for client, lock in sorted(held.items()):
        if (table.owner(lock), lock.holder_host, lock.holder_pid) == (uid, host, pid):
            continue
        state = states.get(table.owner(lock))
        if state in table.final_states:
            takeovers[client] = f"its {table.noun} is {state}"
        elif is_stale(table.record(lock)):
            takeovers[client] = "its holder is gone"
        else:
            blocking.append(table.record(lock))
    if blocking:
        raise table.locked(blocking)
    holder = {"holder_host": host, "holder_pid": pid}
    recovered: list[str] = []
    for client in sorted(wanted):
        current = held.get(client)
        if current is None:
            row = model(client=client, holder_host=host, holder_pid=pid, acquired_at=tx.now, heartbeat_at=tx.now)
            setattr(row, table.owner_column, uid)
            tx.session.add(row)
            tx.append(f"{table.events}acquired", client, uid, holder)
        elif client in takeovers:
            previous = {
                table.owner_column: table.owner(current),
                "holder_host": current.holder_host,
                "holder_pid": current.holder_pid,
                "acquired_at": utc_stamp(current.acquired_at),
                "heartbeat_at": utc_stamp(current.heartbeat_at),
            }
            setattr(current, table.owner_column, uid)
            current.holder_host, current.holder_pid = host, pid
            current.acquired_at = current.heartbeat_at = tx.now
            recovered.append(client)
            tx.append(
                f"{table.events}recovered", client, uid, {**holder, "previous": previous, "reason": takeovers[client]}
            )
        else:
            current.heartbeat_at = tx.now
    tx.session.flush()
    return recovered


def beat(tx: Any, table: LockTable, uid: str, host: str | None, pid: int | None) -> list[str]:
    """Mark the owner's locks alive now (no event) and return their clients; with ``host``/``pid`` only that
    process's. Holding none raises :class:`RolloutLockGone`: the caller lost its locks and must stop."""
    model = table.model
    query = select(model).where(getattr(model, table.owner_column) == uid)
    if host is not None:
        query = query.where(model.holder_host == host)
    if pid is not None:
        query = query.where(model.holder_pid == pid)
    locks = tx.session.scalars(query.order_by(model.client)).all()
    if not locks:
        holder = " ".join(
            p for p in (f"host {host}" if host is not None else "", f"pid {pid}" if pid is not None else "") if p
        )
        raise RolloutLockGone(
            f"{table.noun} {uid} holds no {table.noun} locks" + (f" as {holder}" if holder else ""),
            hint=table.gone_hint.format(uid=uid),
        )
    for lock in locks:
        lock.heartbeat_at = tx.now
    tx.session.flush()
    return [lock.client for lock in locks]


def release(tx: Any, table: LockTable, uid: str) -> list[str]:
    """Delete every lock the owner holds (one event each) and return their clients; locks it no longer holds
    (taken over) are left alone, and none held is no error."""
    model = table.model
    locks = tx.session.scalars(
        select(model).where(getattr(model, table.owner_column) == uid).order_by(model.client)
    ).all()
    for lock in locks:
        tx.session.delete(lock)
        tx.append(
            f"{table.events}released",
            lock.client,
            uid,
            {"holder_host": lock.holder_host, "holder_pid": lock.holder_pid},
        )
    tx.session.flush()
    return [lock.client for lock in locks]


def held(session: Any, table: LockTable) -> list[RolloutLockRecord]:
    """Every lock of the kind held now, by client."""
    return [table.record(lock) for lock in session.scalars(select(table.model).order_by(table.model.client))]
