"""Response-time compliance: of a client's incidents opened in a month, how many were answered (acknowledged,
or resolved without an acknowledgement) by their deadline. The analytics report calls :func:`compliance`.

An incident still unanswered counts as missed once its deadline has passed, and as pending before that (neither
within nor missed: it can still go either way).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from ..errors import ConfigError
from ..ledger import Ledger
from ..ledger.incidents import IncidentRecord

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})\Z")


@dataclass(frozen=True)
class Compliance:
    client: str
    month: str
    total: int
    within: int
    missed: int
    pending: int
    mean_seconds_to_ack: float | None
    mean_seconds_to_resolve: float | None

    @property
    def ratio(self) -> float | None:
        """within / decided (within + missed); None when no incident is decided yet."""
        decided = self.within + self.missed
        return None if decided == 0 else self.within / decided

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "ratio": self.ratio}


def month_bounds(month: str) -> tuple[_dt.datetime, _dt.datetime]:
    """``YYYY-MM`` as [first instant, first instant of the next month) in UTC."""
    match = MONTH_RE.match(month.strip())
    if not match or not 1 <= int(match[2]) <= 12:
        raise ConfigError(f"invalid month {month!r}", hint="write YYYY-MM, e.g. 2026-12")
    year, mon = int(match[1]), int(match[2])
    start = _dt.datetime(year, mon, 1, tzinfo=_dt.UTC)
    end = _dt.datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=_dt.UTC)
    return start, end


def verdict(incident: IncidentRecord, now: _dt.datetime) -> str:
    """``within``, ``missed`` or ``pending`` for one incident."""
    answered = incident.responded_at
    if answered is not None:
        return "within" if answered <= incident.due_at else "missed"
    return "missed" if now > incident.due_at else "pending"


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def summarize(client: str, month: str, incidents: list[IncidentRecord], now: _dt.datetime) -> Compliance:
    verdicts = [verdict(i, now) for i in incidents]
    return Compliance(
        client=client,
        month=month,
        total=len(incidents),
        within=verdicts.count("within"),
        missed=verdicts.count("missed"),
        pending=verdicts.count("pending"),
        mean_seconds_to_ack=_mean([s for i in incidents if (s := i.seconds_to_ack) is not None]),
        mean_seconds_to_resolve=_mean([s for i in incidents if (s := i.seconds_to_resolve) is not None]),
    )


def compliance(ledger: Ledger, client: str, month: str, *, now: _dt.datetime | None = None) -> Compliance:
    """Compliance of ``client``'s incidents opened in ``month`` (``YYYY-MM``, UTC)."""
    start, end = month_bounds(month)
    found = ledger.incidents(client, opened_from=start, opened_before=end)
    return summarize(client, month.strip(), found, now or _dt.datetime.now(_dt.UTC))
