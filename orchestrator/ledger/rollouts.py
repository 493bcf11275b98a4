"""Rollouts in the ledger: the plan as made, the state machine of its execution, and where each host stands.

Every change is one transaction with its events, like the rest of the ledger. A rollout may span clients, while an
event names at most one; so the rollout-wide events (``rollout.created``, ``rollout.state``) are appended once per
client of the rollout, and each client's own history (``events(client=...)``) shows every rollout that touched it.
Host events (``rollout.host``) name the client and, as subject, the host.

States and where they may go are :data:`~orchestrator.ledger.records.ROLLOUT_TRANSITIONS`; a rollout that reaches
a final state gets its ``finished_at`` and changes no more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Text, select, type_coerce
from sqlalchemy.orm import Session, selectinload

from .base import LedgerMixin, json_object, names, required
from .chain import canonical_json
from .errors import LedgerError
from .models import Rollout, RolloutHost
from .records import (
    FINAL_ROLLOUT_STATES,
    NO_WAVE,
    ROLLOUT_HOST_STATUSES,
    ROLLOUT_STATES,
    ROLLOUT_TRANSITIONS,
    TRACKS,
    RolloutHostRecord,
    RolloutHostSpec,
    RolloutRecord,
)


def _check_choice(value: str, choices: frozenset[str], what: str) -> None:
    if value not in choices:
        raise LedgerError(f"unknown {what} {value!r}", hint=f"use one of {', '.join(sorted(choices))}")


def find_rollout(session: Session, uid: str, *, hosts: bool = True) -> Rollout | None:
    query = select(Rollout).where(Rollout.uid == uid)
    if hosts:
        query = query.options(selectinload(Rollout.hosts))
    return session.scalars(query).first()


def require_rollout(session: Session, uid: str, *, hosts: bool = True) -> Rollout:
    rollout = find_rollout(session, uid, hosts=hosts)
    if rollout is None:
        raise LedgerError(f"rollout {uid!r} is not in the ledger", hint="list them with 'sentryctl rollout status'")
    return rollout


def _host_rows(uid: str, clients: Sequence[str], hosts: Sequence[RolloutHostSpec]) -> list[RolloutHostSpec]:
    """The hosts of a new rollout, checked: each belongs to one of its clients, once, with a wave, a known status
    and a target version."""
    rows: list[RolloutHostSpec] = []
    seen: set[tuple[str, str]] = set()
    for spec in hosts:
        try:
            client, host, wave, status, target_version, previous_version = spec
        except (TypeError, ValueError):
            raise LedgerError(
                f"a host of rollout {uid} must be (client, host, wave, status, target_version, previous_version), "
                f"not {spec!r}"
            ) from None
        if not isinstance(host, str) or not host.strip():
            raise LedgerError(f"a host of client {client!r} in rollout {uid} has no name")
        if client not in clients:
            raise LedgerError(
                f"host {host!r} of rollout {uid} belongs to client {client!r}, which the rollout does not name",
                hint=f"the rollout's clients are {', '.join(clients)}",
            )
        if (client, host) in seen:
            raise LedgerError(f"host {host!r} of client {client!r} is listed twice in rollout {uid}")
        seen.add((client, host))
        if isinstance(wave, bool) or not isinstance(wave, int) or wave < NO_WAVE:
            raise LedgerError(
                f"host {host!r} of client {client!r} in rollout {uid} has wave {wave!r}",
                hint=f"waves count from 0 (the canary); {NO_WAVE} means in no wave",
            )
        _check_choice(status, ROLLOUT_HOST_STATUSES, f"status of host {host!r} in rollout {uid}:")
        required(target_version, f"the target version of host {host!r} in rollout {uid}")
        if previous_version is not None:
            required(previous_version, f"the previous version of host {host!r} in rollout {uid} (or None)")
        rows.append((client, host, wave, status, target_version, previous_version))
    return rows


class RolloutsMixin(LedgerMixin):
    """Rollouts and their hosts; part of :class:`~orchestrator.ledger.store.Ledger`."""

    def create_rollout(
        self,
        uid: str,
        *,
        release_version: str,
        track: str,
        plan: Mapping[str, Any],
        clients: Sequence[str],
        hosts: Sequence[RolloutHostSpec],
        emergency_reason: str | None = None,
        parent_uid: str | None = None,
        actor: str | None = None,
    ) -> RolloutRecord:
        """Record a planned rollout: the plan as the planner made it, its clients (each live in the ledger) and
        its hosts as (client, host, wave, status, target_version, previous_version). ``parent_uid`` makes it the
        rollback of that rollout. State ``planned``; one ``rollout.created`` event per client."""
        required(uid, "a rollout uid")
        required(release_version, f"the release version of rollout {uid}")
        _check_choice(track, TRACKS, "release track")
        if emergency_reason is not None:
            required(emergency_reason, f"the emergency reason of rollout {uid} (or None)")
        wanted = names(clients, f"the clients of rollout {uid}")
        rows = _host_rows(uid, wanted, hosts)
        body = json_object(plan, f"plan of rollout {uid}")
        plan_sha256 = hashlib.sha256(canonical_json(body).encode()).hexdigest()

        with self._write(actor) as tx:
            if find_rollout(tx.session, uid, hosts=False) is not None:
                raise LedgerError(f"rollout {uid!r} is already in the ledger")
            for client in wanted:
                self._require_client(tx.session, client)
            if parent_uid is not None and find_rollout(tx.session, parent_uid, hosts=False) is None:
                raise LedgerError(f"rollout {uid} would roll back rollout {parent_uid!r}, which is not in the ledger")
            rollout = Rollout(
                uid=uid,
                release_version=release_version,
                track=track,
                state="planned",
                plan=body,
                clients=wanted,
                emergency_reason=emergency_reason,
                parent_uid=parent_uid,
                actor=tx.actor,
                created_at=tx.now,
                updated_at=tx.now,
                finished_at=None,
                detail={},
            )
            rollout.hosts = [
                RolloutHost(
                    client=client,
                    host=host,
                    wave=wave,
                    status=status,
                    target_version=target,
                    previous_version=previous,
                    detail={},
                    updated_at=tx.now,
                )
                for client, host, wave, status, target, previous in rows
            ]
            tx.session.add(rollout)
            tx.session.flush()
            for client in sorted(wanted):
                tx.append(
                    "rollout.created",
                    client,
                    uid,
                    {
                        "release_version": release_version,
                        "track": track,
                        "clients": wanted,
                        "emergency_reason": emergency_reason,
                        "parent_uid": parent_uid,
                        "plan_sha256": plan_sha256,
                        "hosts": {
                            host: {"wave": wave, "status": status, "target_version": target, "previous_version": prev}
                            for c, host, wave, status, target, prev in rows
                            if c == client
                        },
                    },
                )
            return rollout_record(rollout)

    def rollout(self, uid: str) -> RolloutRecord | None:
        with self._read() as session:
            rollout = find_rollout(session, uid)
            return None if rollout is None else rollout_record(rollout)

    def rollouts(self, client: str | None = None, limit: int = 20) -> list[RolloutRecord]:
        """The newest rollouts first, with their hosts; with ``client``, only those that include it."""
        query = select(Rollout).options(selectinload(Rollout.hosts)).order_by(Rollout.id.desc())
        with self._read() as session:
            if client is None:
                return [rollout_record(r) for r in session.scalars(query.limit(limit))]
            # The clients are a JSON list: LIKE on the quoted name narrows, the exact check on the decoded list
            # decides (LIKE ignores case on SQLite), and only the rollouts kept are loaded with their hosts.
            candidates = session.execute(
                select(Rollout.id, Rollout.clients)
                .where(type_coerce(Rollout.clients, Text).contains(canonical_json(client), autoescape=True))
                .order_by(Rollout.id.desc())
            )
            ids = [row_id for row_id, members in candidates if client in members][: max(limit, 0)]
            if not ids:
                return []
            return [rollout_record(r) for r in session.scalars(query.where(Rollout.id.in_(ids)))]

    def set_rollout_state(
        self, uid: str, state: str, detail: Mapping[str, Any] | None = None, *, actor: str | None = None
    ) -> RolloutRecord:
        """Move the rollout to ``state`` if its current state allows it (see ``ROLLOUT_TRANSITIONS``). ``detail``
        is merged into the rollout's detail (its keys replace earlier ones). A final state sets ``finished_at``.
        One ``rollout.state`` event (from, to, detail) per client."""
        _check_choice(state, ROLLOUT_STATES, "rollout state")
        body = json_object(detail or {}, f"detail of rollout {uid}")
        with self._write(actor) as tx:
            rollout = require_rollout(tx.session, uid)
            before = rollout.state
            allowed = ROLLOUT_TRANSITIONS[before]
            if state not in allowed:
                raise LedgerError(
                    f"rollout {uid} cannot go from {before} to {state}",
                    hint=(
                        f"{before} is final"
                        if not allowed
                        else f"from {before} it can go to {', '.join(sorted(allowed))}"
                    ),
                )
            rollout.state = state
            rollout.updated_at = tx.now
            if body:
                rollout.detail = {**rollout.detail, **body}
            if state in FINAL_ROLLOUT_STATES:
                rollout.finished_at = tx.now
            for client in sorted(rollout.clients):
                tx.append("rollout.state", client, uid, {"from": before, "to": state, "detail": body})
            tx.session.flush()
            return rollout_record(rollout)

    def set_rollout_host(
        self,
        uid: str,
        client: str,
        host: str,
        status: str,
        *,
        detail: Mapping[str, Any] | None = None,
        previous_version: str | None = None,
        actor: str | None = None,
    ) -> RolloutHostRecord:
        """Record where one host of a live rollout stands. ``detail`` is merged into the host's detail;
        ``previous_version`` (what the host ran before, found out while updating it) replaces the planned one when
        given. Recording what is already recorded changes nothing and appends no event; otherwise one
        ``rollout.host`` event."""
        _check_choice(status, ROLLOUT_HOST_STATUSES, "rollout host status")
        if previous_version is not None:
            required(previous_version, f"the previous version of host {host!r} (or None)")
        body = json_object(detail or {}, f"detail of host {host!r} in rollout {uid}")
        with self._write(actor) as tx:
            rollout = require_rollout(tx.session, uid)
            if rollout.state in FINAL_ROLLOUT_STATES:
                raise LedgerError(
                    f"rollout {uid} is {rollout.state}; its hosts can no longer change",
                    hint="undo it with a new rollout whose parent_uid names it",
                )
            row = next((h for h in rollout.hosts if (h.client, h.host) == (client, host)), None)
            if row is None:
                raise LedgerError(f"host {host!r} of client {client!r} is not in rollout {uid}")
            merged = {**row.detail, **body}
            previous = previous_version if previous_version is not None else row.previous_version
            if (row.status, row.detail, row.previous_version) == (status, merged, previous):
                return rollout_host_record(row)
            before = row.status
            row.status = status
            row.detail = merged
            row.previous_version = previous
            row.updated_at = tx.now
            rollout.updated_at = tx.now
            payload: dict[str, Any] = {"rollout": uid, "from": before, "status": status, "detail": body}
            if previous_version is not None:
                payload["previous_version"] = previous_version
            tx.append("rollout.host", client, host, payload)
            tx.session.flush()
            return rollout_host_record(row)


def rollout_host_record(host: RolloutHost) -> RolloutHostRecord:
    return RolloutHostRecord(
        client=host.client,
        host=host.host,
        wave=host.wave,
        status=host.status,
        target_version=host.target_version,
        previous_version=host.previous_version,
        detail=dict(host.detail),
        updated_at=host.updated_at,
    )


def rollout_record(rollout: Rollout) -> RolloutRecord:
    return RolloutRecord(
        uid=rollout.uid,
        release_version=rollout.release_version,
        track=rollout.track,
        state=rollout.state,
        plan=dict(rollout.plan),
        clients=tuple(rollout.clients),
        emergency_reason=rollout.emergency_reason,
        parent_uid=rollout.parent_uid,
        actor=rollout.actor,
        created_at=rollout.created_at,
        updated_at=rollout.updated_at,
        finished_at=rollout.finished_at,
        detail=dict(rollout.detail),
        hosts=tuple(rollout_host_record(h) for h in sorted(rollout.hosts, key=lambda h: (h.wave, h.client, h.host))),
    )
