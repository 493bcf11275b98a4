"""The collector's Prometheus metrics, one registry per app (tests build many apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.records = Counter(
            "sentry_collector_ingest_records_total",
            "Records newly stored, by record type.",
            ["type"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "sentry_collector_ingest_duplicates_total",
            "Records acknowledged that were already stored (replays).",
            registry=self.registry,
        )
        self.rejects = Counter(
            "sentry_collector_ingest_rejects_total",
            "Requests and records refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sentry_collector_batch_latency_seconds",
            "Time from a batch's body read to its commit.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.last_seen = Gauge(
            "sentry_collector_client_last_seen_timestamp_seconds",
            "Unix time of the last batch accepted from each client.",
            ["client"],
            registry=self.registry,
        )
        self.defence = Counter(
            "sentry_collector_defence_requests_total",
            "Defence pack requests of agents, by route (assignment, pack) and result (ok, forbidden, not_found, ...).",
            ["route", "result"],
            registry=self.registry,
        )
