"""The push gates: pure functions of a host's records (its heartbeats since the assignment, its bans since the swap
and over the 24 h before it) that say whether the host took the pack and whether it may keep it.

A host is *confirmed* when its newest heartbeat reports the pushed digest as its active pack. Whether it fails is
the first of, in this order:
- ``refused``: a heartbeat since the assignment says the agent refused or reverted exactly this pack;
- ``stopped``: the agent stopped (its heartbeat says so);
- ``heartbeat``: a gap between heartbeats (or since the last one) longer than ``gap_intervals`` expected intervals;
- ``health``: the newest heartbeat on the pack reports a status other than ``ok``;
- ``detector``: the newest heartbeat on the pack reports more microseconds per log line than the budget;
- ``ban_rate``: more bans since the swap than the host's own baseline allows (:class:`BanBound`).
No clock is read here: the caller passes ``now``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from ..ledger.defence_signals import PushBeat
from .policy import TierPolicy

BASELINE = dt.timedelta(hours=24)
FAILED_PACK = ("refused", "reverted")


@dataclass(frozen=True)
class HostWatch:
    """What the gates know about one host of a wave."""

    client: str
    host: str
    assigned_at: dt.datetime
    beats: tuple[PushBeat, ...]  # since the assignment, plus the last one before it; oldest first
    expected_interval: float  # seconds, as provisioning gives the agent (fleet.expected_intervals)
    bans_since_swap: int = 0
    baseline_bans: int = 0  # bans in the BASELINE before the assignment
    swapped_at: dt.datetime | None = None  # when a heartbeat first reported the pushed digest


@dataclass(frozen=True)
class GateFailure:
    client: str
    host: str
    gate: str
    why: str

    def line(self) -> str:
        return f"{self.client}/{self.host}: {self.gate} gate: {self.why}"


def on_pack(beat: PushBeat, digest: str) -> bool:
    return beat.pack_digest == digest and beat.pack_status == "active"


def confirmed(watch: HostWatch, digest: str) -> bool:
    """The host's newest heartbeat since the assignment reports ``digest`` as its active pack."""
    since = [b for b in watch.beats if b.received_at >= watch.assigned_at]
    return bool(since) and on_pack(since[-1], digest)


def first_on_pack(watch: HostWatch, digest: str) -> dt.datetime | None:
    return next((b.received_at for b in watch.beats if b.received_at >= watch.assigned_at and on_pack(b, digest)), None)


def judge(
    watch: HostWatch, digest: str, policy: TierPolicy, *, gap_intervals: float, now: dt.datetime
) -> GateFailure | None:
    """The first gate the host fails (see the module docstring), or None."""
    for check in (_refused, _stopped, _gap, _health, _detector, _ban_rate):
        why = check(watch, digest, policy, gap_intervals, now)
        if why is not None:
            return GateFailure(watch.client, watch.host, why[0], why[1])
    return None


def judge_all(
    watches: Sequence[HostWatch],
    digest: str,
    policies: dict[str, TierPolicy],
    *,
    gap_intervals: float,
    now: dt.datetime,
) -> list[GateFailure]:
    found = (judge(w, digest, policies[w.client], gap_intervals=gap_intervals, now=now) for w in watches)
    return [f for f in found if f is not None]


Verdict = tuple[str, str] | None


def _since(watch: HostWatch) -> list[PushBeat]:
    return [b for b in watch.beats if b.received_at >= watch.assigned_at]


def _refused(watch: HostWatch, digest: str, _p: TierPolicy, _g: float, _now: dt.datetime) -> Verdict:
    for b in _since(watch):
        if b.pack_status in FAILED_PACK and b.refused_digest == digest:
            return "refused", f"the agent {b.pack_status} the pack ({b.pack_error or 'no reason given'})"
    return None


def _stopped(watch: HostWatch, _d: str, _p: TierPolicy, _g: float, _now: dt.datetime) -> Verdict:
    since = _since(watch)
    if since and since[-1].event == "stop":
        return "heartbeat", "the agent stopped"
    return None


def _gap(watch: HostWatch, _d: str, _p: TierPolicy, gap_intervals: float, now: dt.datetime) -> Verdict:
    limit = gap_intervals * watch.expected_interval
    # Measured from the last heartbeat before the assignment (or the assignment, if the host never sent one):
    # a host that went dark just before the push is as lost as one that goes dark during it.
    times = [b.received_at for b in watch.beats]
    marks = [*times, now] if times else [watch.assigned_at, now]
    for earlier, later in itertools.pairwise(marks):
        gap = (later - earlier).total_seconds()
        if gap > limit and later > watch.assigned_at:
            what = "no heartbeat for" if later is now else "heartbeats stopped for"
            return "heartbeat", f"{what} {gap:.0f}s (more than {gap_intervals:g} x {watch.expected_interval:g}s)"
    return None


def _latest_on_pack(watch: HostWatch, digest: str) -> PushBeat | None:
    since = _since(watch)
    return since[-1] if since and on_pack(since[-1], digest) else None


def _health(watch: HostWatch, digest: str, _p: TierPolicy, _g: float, _now: dt.datetime) -> Verdict:
    beat = _latest_on_pack(watch, digest)
    if beat is not None and beat.status not in (None, "ok"):
        return "health", f"the agent reports status {beat.status!r}"
    return None


def _detector(watch: HostWatch, digest: str, policy: TierPolicy, _g: float, _now: dt.datetime) -> Verdict:
    beat = _latest_on_pack(watch, digest)
    cost = beat.detect_us_per_line if beat is not None else None
    if cost is not None and cost > policy.detect_us_per_line:
        return "detector", f"{cost:g} us per log line, budget {policy.detect_us_per_line:g}"
    return None


def _ban_rate(watch: HostWatch, _d: str, policy: TierPolicy, _g: float, now: dt.datetime) -> Verdict:
    if watch.swapped_at is None:
        return None
    seconds = (now - watch.swapped_at).total_seconds()
    baseline = watch.baseline_bans / BASELINE.total_seconds()
    allowed = policy.ban_rate.allowed(baseline, seconds)
    if watch.bans_since_swap > allowed:
        return "ban_rate", (
            f"{watch.bans_since_swap} bans in {seconds:.0f}s since the swap; its own baseline "
            f"({watch.baseline_bans} in 24 h) allows {allowed:.0f} "
            f"({policy.ban_rate.factor:g}x + {policy.ban_rate.floor})"
        )
    return None
