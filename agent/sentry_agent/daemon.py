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
- ``heartbeat``: the same envelope and what :mod:`sentry_agent.heartbeat` lists (``counters``: lines, matches,
  bans, invalid_ips per key; ban_suppressed, ban_errors; spool_dropped per record type).

``rules_version`` is the version of the rules in effect: the release's, or those of the active detection pack.

Detection packs (when ``pack_public_key`` is set): a poller thread (:mod:`sentry_agent.packpoll`) verifies them
and hands them over; this loop applies the verdict between two polls of the sources
(:mod:`sentry_agent.packstate`): the detector is replaced as a whole, so a line is judged by the old rules or
the new ones, never by a mix. A pack whose detector raises is reverted at once.

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
from .agentmetrics import build_registry, counters
from .ban import BanFunc, BanManager, BanOutcome, NftBanner
from .blocklist import NftBlocklist
from .config import AgentConfig
from .detect import Detection, Detector
from .firewall import NftStats, StatsFunc
from .health import HealthState, rfc3339
from .heartbeat import FirewallReader, compose
from .httpd import HealthServer
from .packpoll import PackClient, PackPoller
from .packstate import Change, PackInbox, PackState
from .rules import RuleSet
from .shipper import Shipper
from .spool import Spool, SpoolError
from .tail import FileTailer, OffsetStore
from .transport import Transport

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
        pack_client: PackClient | None = None,
        blocklist: NftBlocklist | None = None,
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
            ban_func = NftBanner.from_config(config)
        self.bans = BanManager(ban_func, config.never_ban, enabled=config.ban_command_enabled)
        if firewall_stats is None and config.ban_command_enabled:
            firewall_stats = NftStats.from_config(config)
        self.firewall_stats = firewall_stats
        self.firewall = FirewallReader(firewall_stats)
        # The idempotency key of every record: a fresh boot id per start, seq per record in write order.
        self.boot = secrets.token_hex(16)
        self._seq = 0
        self.rules_digest: str | None = _file_sha256(config.rules_file or default_rules_path())
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
        self.packs: PackState | None = None
        self.poller: PackPoller | None = None
        self.inbox = PackInbox()
        if config.packs_enabled:
            if blocklist is None and config.ban_command_enabled:
                blocklist = NftBlocklist.from_config(config)
            self.packs = PackState(config, rules, self.rules_digest, blocklist=blocklist, wall_clock=wall_clock)
            self.poller = PackPoller(config, self.inbox, self.packs.known, client=pack_client)
        self._detect_ns = 0
        self._detect_lines = 0
        self.offsets = OffsetStore(config.state_dir)
        self.tailers: dict[str, FileTailer] = {}
        self.http: HealthServer | None = None
        self._source_errors: dict[str, str] = {}
        self._next_heartbeat = 0.0
        self._next_offset_save = 0.0
        self._next_prune = 0.0
        self._offsets_dirty = False
        self._started = False
        self.registry = build_registry(self)

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
        if self.packs is not None:
            change = self.packs.resume()
            if change is not None:
                self._use(change)
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
        if self.poller is not None:
            self.poller.start()
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
        self.take_pack()
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
        if self.poller is not None:
            self.poller.stop()
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
                for detection in self._feed(name, line, now):
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

    def _feed(self, source: str, line: str, now: float) -> list[Detection]:
        start = time.perf_counter_ns()
        try:
            found = self.detector.feed(source, line, now)
        except Exception as exc:
            packs = self.packs
            if packs is None or packs.active is None or packs.active.rules is None:
                raise  # the release's own rules: nothing to go back to
            reason = f"pack {packs.active.version} reverted: its detector raised {type(exc).__name__}: {exc}"
            self._switch(packs.revert(reason))
            return []
        self._detect_ns += time.perf_counter_ns() - start
        self._detect_lines += 1
        return found

    def detect_us_per_line(self) -> float | None:
        if not self._detect_lines:
            return None
        return round(self._detect_ns / self._detect_lines / 1000.0, 3)

    # -- packs -----------------------------------------------------------------------------------------

    def take_pack(self) -> None:
        """Apply the poller's latest verdict, if any (the loop thread, between two polls of the sources)."""
        item = self.inbox.take()
        if item is None or self.packs is None:
            return
        kind, value = item
        if kind == "activate":
            change = self.packs.activate(value)
        elif kind == "refuse":
            change = self.packs.refuse(*value)
        else:
            change = self.packs.drop()
        if change is not None:
            self._switch(change)

    def _switch(self, change: Change) -> None:
        self._use(change)
        if self._started:
            self._append([self._heartbeat("pack")])

    def _use(self, change: Change) -> None:
        """Replace the detector and everything derived from the rules in effect."""
        rules = change.rules
        active, inactive = rules.split(self.config.sources)
        bans = self.registry.get("sentry_agent_bans_total")
        for rule in active:
            bans.declare(rule.id)
        old = self.detector
        self.detector = Detector(active)
        self.detector.carry_counts(old)
        self.rules, self.active_rules, self.inactive_rules = rules, active, inactive
        self.rules_digest = change.rules_digest
        self.health.set_rules(rules.version, [r.id for r in active], [r.id for r in inactive])
        self._detect_ns = self._detect_lines = 0
        log.info("rules %s in effect (%s): %d active, %d inactive", rules.version, change.reason,
                 len(active), len(inactive))  # fmt: skip

    def _heartbeat(self, event: str) -> dict[str, Any]:
        return compose(self, event)

    def envelope(self, kind: str) -> dict[str, Any]:
        return self._envelope(kind)

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

    def counters(self) -> dict[str, Any]:
        return counters(self)

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
