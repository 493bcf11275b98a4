"""The agent's main loop: poll sources, detect, ban, spool alerts and heartbeats, keep offsets.

One thread does all the work (tailing, detection, bans, spool writes); the HTTP server runs in its own
threads and only reads thread-safe state. Bans run synchronously with a timeout, so a hung ``nft`` delays
tailing by at most ``ban_timeout_seconds`` and never stops it.

Delivery is at-least-once: alerts are fsync'ed to the spool before the tail offsets that produced them are
saved, so a crash can repeat an alert (and an idempotent nft ban) but not lose one. Detection windows use the
time lines are read, not timestamps inside them, because log formats differ per source.

Spool records written here:

- ``alert``: ``time`` (RFC 3339 UTC), ``client``, ``tier``, ``host``, ``version``, ``rules_version``,
  ``rule``, ``source``, ``ip``, ``count``, ``threshold``, ``window_seconds``, ``ban_seconds``, ``action``
  (``banned`` | ``recorded`` | ``suppressed`` | ``failed``), ``severity`` (the rule's) and ``error`` when the ban
  failed.
- ``heartbeat``: ``time``, ``event`` (``start`` | ``interval`` | ``stop``; a missing ``stop`` means the agent
  died), ``client``, ``tier``, ``host``, ``version``, ``rules_version``, ``rules_digest`` (sha256 of the
  active rules file), ``status``, ``uptime_seconds``, ``interval_seconds``, ``last_error``, ``spool_records``
  and ``spool_bytes`` (not yet acknowledged by the collector, and on disk), ``dropped`` (per record type),
  ``quarantined``, ``bans_active`` and ``firewall`` (drop counters of Sentry's nftables table; both null
  when nft cannot be read or ``ban_command_enabled`` is false), ``shipper`` (shipped, batches, errors,
  last_error) and ``counters`` (lines, matches, bans, invalid_ips per key; ban_suppressed, ban_errors;
  spool_dropped per record type).

Every record carries its idempotency key: ``boot`` (32 hex digits, drawn at each agent start) and ``seq``
(0, 1, 2, ... per boot, in write order), given when the record is made, so a record sent again after a crash
carries the same key and the collector stores it once.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from . import default_rules_path
from .ban import BanFunc, BanManager, BanOutcome, NftBanner
from .config import AgentConfig
from .detect import Detection, Detector
from .firewall import FirewallError, NftStats, StatsFunc
from .health import HealthState, rfc3339
from .httpd import HealthServer
from .metrics import Registry
from .rules import RuleSet
from .shipper import Shipper, Transport
from .spool import Spool, SpoolError
from .tail import FileTailer, OffsetStore

__all__ = ["Agent"]

log = logging.getLogger(__name__)

OFFSET_SAVE_SECONDS = 2.0
PRUNE_SECONDS = 60.0


class Stopper(Protocol):
    """What :meth:`Agent.run` waits on: a ``threading.Event`` in tests, a ``StopSignal`` in the daemon."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        rules: RuleSet,
        version: str,
        *,
        ban_func: BanFunc | None = None,
        firewall_stats: StatsFunc | None = None,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rotate_grace_seconds: float = 5.0,
    ) -> None:
        self.config = config
        self.rules = rules
        self.version = version
        self._clock = clock
        self._wall = wall_clock
        self._rotate_grace = rotate_grace_seconds
        active, inactive = rules.split(config.sources)
        self.active_rules, self.inactive_rules = active, inactive
        self.detector = Detector(active)
        if ban_func is None and config.ban_command_enabled:
            ban_func = NftBanner(
                family=config.nft_table_family,
                table=config.nft_table,
                set_v4=config.nft_set_v4,
                set_v6=config.nft_set_v6,
                nft_binary=config.nft_binary,
                timeout=config.ban_timeout_seconds,
            )
        self.bans = BanManager(ban_func, config.never_ban, enabled=config.ban_command_enabled)
        if firewall_stats is None and config.ban_command_enabled:
            firewall_stats = NftStats(
                family=config.nft_table_family,
                table=config.nft_table,
                ban_sets=(config.nft_set_v4, config.nft_set_v6),
                nft_binary=config.nft_binary,
                timeout=config.ban_timeout_seconds,
            )
        self.firewall_stats = firewall_stats
        self._firewall_error: str | None = None
        # The idempotency key of every record: a fresh boot id per start, seq per record in write order.
        self.boot = secrets.token_hex(16)
        self._seq = 0
        self.rules_digest = _file_sha256(config.rules_file or default_rules_path())
        self.health = HealthState(
            version=version,
            rules_version=rules.version,
            client=config.client,
            host=config.host,
            tier=config.tier,
            active_rules=[r.id for r in active],
            inactive_rules=[r.id for r in inactive],
            self_test_fail=rules.self_test_fail,
            clock=clock,
            wall_clock=wall_clock,
        )
        self.spool = Spool(config.spool_dir, config.spool_max_bytes)
        self.shipper: Shipper | None = None
        if config.shipping_enabled:
            self.shipper = Shipper(config, self.spool, transport=transport, clock=clock, wall_clock=wall_clock)
        self.offsets = OffsetStore(config.state_dir)
        self.tailers: dict[str, FileTailer] = {}
        self.http: HealthServer | None = None
        self._source_errors: dict[str, str] = {}
        self._next_heartbeat = 0.0
        self._next_offset_save = 0.0
        self._next_prune = 0.0
        self._offsets_dirty = False
        self._started = False
        self.registry = self._build_metrics()

    # -- metrics ---------------------------------------------------------------------------------------

    def _build_metrics(self) -> Registry:
        reg = Registry()
        lines = reg.counter("sentry_agent_lines_total", "Lines read per log source.", ("source",))
        for source in self.config.sources:
            lines.declare(source.name)
        reg.counter(
            "sentry_agent_matches_total",
            "Lines matching a detection rule.",
            ("rule",),
            collector=lambda: {(k,): float(v) for k, v in self.detector.matches().items()},
        )
        reg.counter(
            "sentry_agent_invalid_ips_total",
            "Rule matches whose ip group was not a valid IP address (ignored).",
            ("rule",),
            collector=lambda: {(k,): float(v) for k, v in self.detector.invalid_ips().items()},
        )
        bans = reg.counter(
            "sentry_agent_bans_total",
            "Bans per rule (applied through nftables, or only recorded when ban_command_enabled is false).",
            ("rule",),
        )
        for rule in self.active_rules:
            bans.declare(rule.id)
        reg.counter("sentry_agent_ban_suppressed_total", "Detections not banned because of never_ban.")
        reg.counter("sentry_agent_ban_errors_total", "Bans that failed (see last_error in /healthz).")
        reg.gauge(
            "sentry_agent_spool_bytes",
            "Bytes in the spool.",
            collector=lambda: {(): self.spool.size_bytes},
        )
        reg.counter(
            "sentry_agent_spool_dropped_total",
            "Spool records dropped to stay under spool_max_bytes, per record type.",
            ("type",),
            collector=self._dropped_samples,
        )
        reg.gauge("sentry_agent_uptime_seconds", "Seconds since the agent started.",
                  collector=lambda: {(): round(self.health.uptime(), 3)})  # fmt: skip
        info = reg.gauge("sentry_agent_info", "Agent and rules version.", ("version", "rules_version"))
        info.set(self.version, self.rules.version, value=1)
        return reg

    def _dropped_samples(self) -> dict[tuple[str, ...], float]:
        dropped: dict[str, int] = {"alert": 0, "heartbeat": 0}
        dropped.update(self.spool.dropped_counts())
        return {(k,): float(v) for k, v in dropped.items()}

    def _counter(self, name: str, *labels: str) -> int:
        return int(self.registry.get(name).value(*labels))

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open state and spool, take first sight of every source, start the HTTP server.

        Raises OSError when a directory cannot be created or the port cannot be bound.
        """
        self.config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.spool.open()
        saved = self.offsets.load()
        for source in self.config.sources:
            self.tailers[source.name] = FileTailer(
                source.path,
                saved.get(source.name),
                rotate_grace_seconds=self._rotate_grace,
                clock=self._clock,
            )
        cfg = self.config
        self.http = HealthServer(
            cfg.listen_address,
            cfg.listen_port,
            self.health,
            self.registry,
            poll_interval=cfg.poll_interval_seconds,
        )
        self.http.start()
        now = self._clock()
        # The first poll defines "start at end" for files that exist now; it also catches up from offsets.
        self._poll_sources(now)
        self._append([self._heartbeat("start")])
        self._next_heartbeat = now + self.config.heartbeat_interval_seconds
        self._next_prune = now + PRUNE_SECONDS
        self._save_offsets()
        self._started = True
        if self.shipper is not None:
            self.shipper.start()
        else:
            log.info("shipping disabled (collector_url is not set): records stay in the spool")
        for rule in self.inactive_rules:
            log.info("rule %s inactive: source %r is not configured", rule.id, rule.source)

    def run(self, stop: Stopper) -> None:
        last_failure = ""
        while not stop.is_set():
            try:
                self.run_once()
                last_failure = ""
            except Exception as exc:  # the loop must survive anything a single iteration hits
                failure = f"agent loop error: {type(exc).__name__}: {exc}"
                if failure != last_failure:  # a persistent fault must not flood the journal every poll
                    log.exception("%s", failure)
                    last_failure = failure
                self.health.record_error(failure)
            stop.wait(self.config.poll_interval_seconds)

    def run_once(self) -> None:
        now = self._clock()
        self._poll_sources(now)
        if now >= self._next_heartbeat:
            self._append([self._heartbeat("interval")])
            self._next_heartbeat = now + self.config.heartbeat_interval_seconds
        if self._offsets_dirty and now >= self._next_offset_save:
            self._save_offsets()
        if now >= self._next_prune:
            self.detector.prune(now)
            self._next_prune = now + PRUNE_SECONDS

    def shutdown(self) -> None:
        """Stop cleanly: final heartbeat, offsets saved, spool closed, server stopped.

        Also safe after a failed :meth:`start`, which then writes nothing.
        """
        if self._started:
            self._append([self._heartbeat("stop")])
            self._save_offsets()
            self._started = False
        if self.shipper is not None:
            self.shipper.stop()
        self.spool.close()
        for tailer in self.tailers.values():
            tailer.close()
        if self.http is not None:
            self.http.stop()

    # -- work ------------------------------------------------------------------------------------------

    def _poll_sources(self, now: float) -> None:
        alerts: list[dict[str, Any]] = []
        lines_total = self.registry.get("sentry_agent_lines_total")
        for name, tailer in self.tailers.items():
            lines = tailer.poll()
            if tailer.error is not None:
                exc = tailer.error
                message = f"source {name}: cannot read {tailer.path}: {exc.strerror or exc}"
                if self._source_errors.get(name) != message:  # log once per distinct problem, not per poll
                    log.error("%s", message)
                    self._source_errors[name] = message
                self.health.record_error(message)
            elif self._source_errors.pop(name, None) is not None:
                log.info("source %s: readable again", name)
            if not lines:
                continue
            self._offsets_dirty = True
            lines_total.inc(name, amount=len(lines))
            for line in lines:
                for detection in self.detector.feed(name, line, now):
                    alerts.append(self._act(detection))
        # One fsync for everything this poll produced; offsets are saved only after this succeeds.
        self._append(alerts)

    def _act(self, det: Detection) -> dict[str, Any]:
        rule = det.rule
        result = self.bans.ban(det.ip, rule.ban_seconds)
        what = f"{det.ip} ({rule.id}: {det.count} matches within {rule.window_seconds}s)"
        if result.outcome in (BanOutcome.BANNED, BanOutcome.RECORDED):
            self.registry.get("sentry_agent_bans_total").inc(rule.id)
            verb = "banned" if result.outcome is BanOutcome.BANNED else "ban recorded (ban command disabled):"
            log.warning("%s %s for %ds", verb, what, rule.ban_seconds)
        elif result.outcome is BanOutcome.SUPPRESSED:
            self.registry.get("sentry_agent_ban_suppressed_total").inc()
            log.info("not banning %s: address is in never_ban", what)
        else:
            self.registry.get("sentry_agent_ban_errors_total").inc()
            self.health.record_error(f"ban of {det.ip} failed: {result.error}")
            log.error("ban of %s failed: %s", what, result.error)
            # Let the next threshold try again instead of leaving the address unbanned for ban_seconds.
            self.detector.forget(rule.id, det.ip)
        record = self._envelope("alert")
        record.update(
            rule=rule.id,
            source=det.source,
            ip=str(det.ip),
            count=det.count,
            threshold=rule.threshold,
            window_seconds=rule.window_seconds,
            ban_seconds=rule.ban_seconds,
            action=result.outcome.value,
            severity=rule.severity,
        )
        if result.error is not None:
            record["error"] = result.error
        return record

    def _envelope(self, kind: str) -> dict[str, Any]:
        seq, self._seq = self._seq, self._seq + 1
        return {
            "type": kind,
            "boot": self.boot,
            "seq": seq,
            "time": rfc3339(self._wall()),
            "client": self.config.client,
            "tier": self.config.tier,
            "host": self.config.host,
            "version": self.version,
            "rules_version": self.rules.version,
        }

    def _heartbeat(self, event: str) -> dict[str, Any]:
        record = self._envelope("heartbeat")
        bans_active, firewall = self._firewall()
        shipper = self.shipper
        dropped = {"alert": 0, "heartbeat": 0, **self.spool.dropped_counts()}
        record.update(
            event=event,
            status=self.health.status(),
            uptime_seconds=round(self.health.uptime(), 3),
            interval_seconds=self.config.heartbeat_interval_seconds,
            rules_digest=self.rules_digest,
            last_error=self.health.last_error,
            spool_records=shipper.pending_records() if shipper is not None else self.spool.record_count,
            spool_bytes=self.spool.size_bytes,
            dropped=dropped,
            quarantined=shipper.quarantined if shipper is not None else 0,
            bans_active=bans_active,
            firewall=firewall,
            shipper=({**shipper.stats(), "last_error": shipper.last_error} if shipper is not None else None),
            counters=self.counters(),
        )
        return record

    def _firewall(self) -> tuple[int | None, dict[str, dict[str, int]] | None]:
        """Bans active and drop counters, from one bounded nft call; (None, None) when unknown."""
        if self.firewall_stats is None:
            return None, None
        try:
            stats = self.firewall_stats()
        except FirewallError as exc:
            if str(exc) != self._firewall_error:  # once per distinct problem, not per heartbeat
                log.warning("heartbeat without firewall figures: %s", exc)
                self._firewall_error = str(exc)
            return None, None
        self._firewall_error = None
        return stats.bans_active, stats.counters

    def counters(self) -> dict[str, Any]:
        lines = self.registry.get("sentry_agent_lines_total")
        bans = self.registry.get("sentry_agent_bans_total")
        return {
            "lines": {s.name: int(lines.value(s.name)) for s in self.config.sources},
            "matches": self.detector.matches(),
            "invalid_ips": self.detector.invalid_ips(),
            "bans": {r.id: int(bans.value(r.id)) for r in self.active_rules},
            "ban_suppressed": self._counter("sentry_agent_ban_suppressed_total"),
            "ban_errors": self._counter("sentry_agent_ban_errors_total"),
            "spool_dropped": {k[0]: int(v) for k, v in self._dropped_samples().items()},
        }

    def _append(self, records: list[dict[str, Any]]) -> None:
        try:
            self.spool.append(records)
        except SpoolError as exc:
            log.error("%s", exc)
            self.health.record_error(str(exc))

    def _save_offsets(self) -> None:
        positions = {name: pos for name, t in self.tailers.items() if (pos := t.position()) is not None}
        try:
            self.offsets.save(positions)
        except OSError as exc:
            log.error("cannot save offsets to %s: %s", self.offsets.path, exc)
            self.health.record_error(f"cannot save offsets: {exc}")
            return
        self._offsets_dirty = False
        self._next_offset_save = self._clock() + OFFSET_SAVE_SECONDS


def _file_sha256(path: object) -> str | None:
    try:
        with open(str(path), "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None
