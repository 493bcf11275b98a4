"""Heartbeat records: what the agent says about itself every ``heartbeat_interval_seconds`` and on events.

``event``: ``start`` | ``interval`` | ``stop`` (a missing ``stop`` means the agent died) | ``pack`` (written at
once when a detection pack is activated, reverted, refused or dropped). Besides the envelope (see
:mod:`sentry_agent.daemon`) a heartbeat carries ``status``, ``uptime_seconds``, ``interval_seconds``,
``rules_digest`` (sha256 of the rules in effect: the release's rules file, or the pack's rules object),
``last_error``, ``spool_records``, ``spool_bytes``, ``dropped``, ``quarantined``, ``bans_active`` and
``firewall`` (null when nft cannot be read or ``ban_command_enabled`` is false), ``shipper``, ``counters`` and
the pack fields: ``pack_version`` and ``pack_digest`` (the active pack, null = release rules only),
``pack_status`` (``none`` | ``active`` | ``reverted`` | ``refused``), ``pack_error`` (the last refusal or
revert reason, one line), ``pack_refused_digest`` and ``detect_us_per_line`` (mean microseconds the detector
spent per log line since the rules in effect took effect; null before any line).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .firewall import FirewallError, StatsFunc

if TYPE_CHECKING:
    from .daemon import Agent

__all__ = ["NO_PACK", "FirewallReader", "compose"]

log = logging.getLogger(__name__)

NO_PACK: dict[str, Any] = {
    "pack_version": None,
    "pack_digest": None,
    "pack_status": "none",
    "pack_error": None,
    "pack_refused_digest": None,
}


class FirewallReader:
    """Bans active and drop counters, from one bounded nft call; (None, None) when unknown."""

    def __init__(self, stats: StatsFunc | None) -> None:
        self.stats = stats
        self._error: str | None = None

    def __call__(self) -> tuple[int | None, dict[str, dict[str, int]] | None]:
        if self.stats is None:
            return None, None
        try:
            stats = self.stats()
        except FirewallError as exc:
            if str(exc) != self._error:  # once per distinct problem, not per heartbeat
                log.warning("heartbeat without firewall figures: %s", exc)
                self._error = str(exc)
            return None, None
        self._error = None
        return stats.bans_active, stats.counters


def compose(agent: Agent, event: str) -> dict[str, Any]:
    record = agent.envelope("heartbeat")
    bans_active, firewall = agent.firewall()
    shipper = agent.shipper
    dropped = {"alert": 0, "heartbeat": 0, **agent.spool.dropped_counts()}
    record.update(
        event=event,
        status=agent.health.status(),
        uptime_seconds=round(agent.health.uptime(), 3),
        interval_seconds=agent.config.heartbeat_interval_seconds,
        rules_digest=agent.rules_digest,
        last_error=agent.health.last_error,
        spool_records=shipper.pending_records() if shipper is not None else agent.spool.record_count,
        spool_bytes=agent.spool.size_bytes,
        dropped=dropped,
        quarantined=shipper.quarantined if shipper is not None else 0,
        bans_active=bans_active,
        firewall=firewall,
        shipper=({**shipper.stats(), "last_error": shipper.last_error} if shipper is not None else None),
        counters=agent.counters(),
    )
    record.update(agent.packs.fields() if agent.packs is not None else NO_PACK)
    record["detect_us_per_line"] = agent.detect_us_per_line()
    return record
