"""The defence lane's tables: packs and each host's assignment (migration 0007); pushes, their per-client locks and
the collective-defence proposals (migration 0008). Kept apart from :mod:`.models`, on the same ``Base``, so the
schema test compares them with the migrations like every other table."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, JSONList


class DefencePush(Base):
    """One pack going to a set of clients: the plan as made (waves, who waits), the state of its execution, and
    where each host stands (``hosts``: ``"client/host"`` -> its state, kept in one JSON object because only the
    push's own holder writes it)."""

    __tablename__ = "defence_pushes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(128), unique=True)
    version: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    clients: Mapped[list[str]] = mapped_column(JSONList())
    state: Mapped[str] = mapped_column(String(32), index=True)
    emergency_reason: Mapped[str | None] = mapped_column(Text)
    dwell_override_seconds: Mapped[int | None]
    plan: Mapped[dict[str, Any]]
    hosts: Mapped[dict[str, Any]]
    halt_reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[_dt.datetime]
    updated_at: Mapped[_dt.datetime]
    finished_at: Mapped[_dt.datetime | None]
    detail: Mapped[dict[str, Any]]


class DefencePushLock(Base):
    """One push at a time per client: the row exists while a push holds the client (as ``rollout_locks``)."""

    __tablename__ = "defence_push_locks"

    client: Mapped[str] = mapped_column(String(100), primary_key=True)
    push_uid: Mapped[str] = mapped_column(String(128), ForeignKey("defence_pushes.uid"), index=True)
    holder_host: Mapped[str] = mapped_column(String(255))
    holder_pid: Mapped[int]
    acquired_at: Mapped[_dt.datetime]
    heartbeat_at: Mapped[_dt.datetime]


class DefenceProposal(Base):
    """A source banned at several clients within a short time, proposed as a fleet-wide blocklist entry until
    ``expires_at``; ``pushed_version`` is the collective pack that carried it, once one did."""

    __tablename__ = "defence_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    net: Mapped[str] = mapped_column(String(64), index=True)
    clients: Mapped[list[str]] = mapped_column(JSONList())
    bans: Mapped[int]
    first_seen: Mapped[_dt.datetime]
    last_seen: Mapped[_dt.datetime]
    proposed_at: Mapped[_dt.datetime]
    expires_at: Mapped[_dt.datetime]
    pushed_version: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(255))


class DefencePack(Base):
    """A signed defence pack as built: its exact bytes and signature (what the collector serves), and a summary.
    Versions are never overwritten: a pack once built stays what it was."""

    __tablename__ = "defence_packs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    rules_version: Mapped[str | None] = mapped_column(String(64))
    rule_count: Mapped[int]
    blocklist_count: Mapped[int]
    built_at: Mapped[_dt.datetime]
    built_by: Mapped[str] = mapped_column(String(255))


class DefenceAssignment(Base):
    """The pack one host of a client is meant to run (none: the release's own rules), and the one before it, which
    a revert goes back to. One row per (client, host); the history of changes is in the events."""

    __tablename__ = "defence_assignments"
    __table_args__ = (UniqueConstraint("client", "host"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(64))
    digest: Mapped[str | None] = mapped_column(String(64))
    previous_version: Mapped[str | None] = mapped_column(String(64))
    previous_digest: Mapped[str | None] = mapped_column(String(64))
    push_uid: Mapped[str | None] = mapped_column(String(128))
    assigned_at: Mapped[_dt.datetime]
