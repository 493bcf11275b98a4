"""The agent's Prometheus metrics (served on ``/metrics``) and the ``counters`` object of its heartbeats.

Collectors read the agent's current detector and spool when scraped, so a detection pack swapping the detector
needs nothing here but declaring the new rules' ban series (see ``Agent._use``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .metrics import Registry

if TYPE_CHECKING:
    from .daemon import Agent

__all__ = ["build_registry", "counters", "dropped_samples"]


def build_registry(agent: Agent) -> Registry:
    reg = Registry()
    lines = reg.counter("sentry_agent_lines_total", "Lines read per log source.", ("source",))
    for source in agent.config.sources:
        lines.declare(source.name)
    reg.counter(
        "sentry_agent_matches_total",
        "Lines matching a detection rule.",
        ("rule",),
        collector=lambda: {(k,): float(v) for k, v in agent.detector.matches().items()},
    )
    reg.counter(
        "sentry_agent_invalid_ips_total",
        "Rule matches whose ip group was not a valid IP address (ignored).",
        ("rule",),
        collector=lambda: {(k,): float(v) for k, v in agent.detector.invalid_ips().items()},
    )
    bans = reg.counter(
        "sentry_agent_bans_total",
        "Bans per rule (applied through nftables, or only recorded when ban_command_enabled is false).",
        ("rule",),
    )
    for rule in agent.active_rules:
        bans.declare(rule.id)
    reg.counter("sentry_agent_ban_suppressed_total", "Detections not banned because of never_ban.")
    reg.counter("sentry_agent_ban_errors_total", "Bans that failed (see last_error in /healthz).")
    reg.gauge(
        "sentry_agent_spool_bytes",
        "Bytes in the spool.",
        collector=lambda: {(): agent.spool.size_bytes},
    )
    reg.counter(
        "sentry_agent_spool_dropped_total",
        "Spool records dropped to stay under spool_max_bytes, per record type.",
        ("type",),
        collector=lambda: dropped_samples(agent),
    )
    reg.gauge("sentry_agent_uptime_seconds", "Seconds since the agent started.",
              collector=lambda: {(): round(agent.health.uptime(), 3)})  # fmt: skip
    # A collector, not a set value: the rules version changes when a detection pack takes effect.
    reg.gauge("sentry_agent_info", "Agent and rules version.", ("version", "rules_version"),
              collector=lambda: {(agent.version, agent.rules.version): 1.0})  # fmt: skip
    return reg


def dropped_samples(agent: Agent) -> dict[tuple[str, ...], float]:
    dropped: dict[str, int] = {"alert": 0, "heartbeat": 0}
    dropped.update(agent.spool.dropped_counts())
    return {(k,): float(v) for k, v in dropped.items()}


def counters(agent: Agent) -> dict[str, Any]:
    reg = agent.registry
    lines = reg.get("sentry_agent_lines_total")
    bans = reg.get("sentry_agent_bans_total")
    return {
        "lines": {s.name: int(lines.value(s.name)) for s in agent.config.sources},
        "matches": agent.detector.matches(),
        "invalid_ips": agent.detector.invalid_ips(),
        "bans": {r.id: int(bans.value(r.id)) for r in agent.active_rules},
        "ban_suppressed": int(reg.get("sentry_agent_ban_suppressed_total").value()),
        "ban_errors": int(reg.get("sentry_agent_ban_errors_total").value()),
        "spool_dropped": {k[0]: int(v) for k, v in dropped_samples(agent).items()},
    }
