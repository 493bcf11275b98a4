"""Escalation and delivery passes: which ladder steps of open incidents are due (pure timing from
:mod:`.policy`), recorded once in the ledger; then the pending pages claimed and sent, a failure retried with
backoff (never dropped), every outcome on the incident's timeline."""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import OrchestratorError
from ..ledger import Ledger
from ..ledger.escalations import DueStep, PageRecord
from . import notify
from .policy import policy_for

log = logging.getLogger(__name__)

Resolver = Callable[[str, str], list[str]]  # (client, target) -> Apprise URLs
Sender = Callable[[Sequence[str], str, str], str | None]  # (urls, title, body) -> None or why it failed
LEASE = _dt.timedelta(seconds=60)
BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 300.0


def backoff(attempts: int) -> _dt.timedelta:
    """5 s after the first failed try, doubling, at most 5 min: a receiver that is down is asked again soon, and
    one down for hours is asked every 5 minutes."""
    return _dt.timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class PagingOptions:
    resolve: Resolver
    send: Sender = field(default=notify.send)
    actor: str = "collector"
    lease: _dt.timedelta = LEASE


def due_steps(ledger: Ledger, now: _dt.datetime) -> list[DueStep]:
    """Ladder steps due by ``now`` for incidents nobody acknowledged, not yet recorded."""
    pending = ledger.incidents(states=["open"])
    if not pending:
        return []
    done = {(p.incident_id, p.step_index) for p in ledger.incident_pages([i.id for i in pending])}
    due = []
    for incident in pending:
        try:
            policy = policy_for(incident.tier)
        except OrchestratorError as exc:
            log.error("incident %d: %s", incident.id, exc)
            continue
        for step in policy.due_steps(incident.opened_at, now):
            if (incident.id, step.index) not in done:
                due.append(DueStep(incident.id, step.index, step.target))
    return due


def escalate_pass(ledger: Ledger, now: _dt.datetime, actor: str = "collector") -> list[PageRecord]:
    due = due_steps(ledger, now)
    return ledger.record_due_steps(due, at=now, actor=actor) if due else []


def message(page: PageRecord) -> tuple[str, str]:
    title = f"[sentry] {page.severity} incident {page.incident_id} of {page.client}: {page.title}"
    body = (
        f"{page.title}\nclient {page.client}, incident {page.incident_id}, ladder step {page.step_index + 1}"
        f" ({page.target}).\nAcknowledge: sentryctl incidents ack {page.incident_id}"
    )
    return title, body


def deliver_pass(ledger: Ledger, now: _dt.datetime, options: PagingOptions) -> tuple[int, int]:
    """Claim the pages due and send each; (sent, failed)."""
    sent = failed = 0
    for page in ledger.claim_pages(at=now, lease=options.lease, actor=options.actor):
        assert page.target is not None  # breach steps are never pending
        try:
            error = options.send(options.resolve(page.client, page.target), *message(page))
        except OrchestratorError as exc:
            error = exc.message
        if error is None:
            ledger.page_sent(page.id, at=now, actor=options.actor)
            log.warning("incident %d: paged %s (step %d)", page.incident_id, page.target, page.step_index + 1)
            sent += 1
        else:
            retry = now + backoff(page.attempts)
            ledger.page_failed(page.id, error, at=now, retry_at=retry, actor=options.actor)
            log.warning("incident %d: page to %s failed: %s; retry at %s", page.incident_id, page.target, error, retry)
            failed += 1
    return sent, failed
