"""A minimal thread-safe metrics registry rendering the Prometheus text exposition format (version 0.0.4).

Each family is rendered as ``# HELP``, ``# TYPE``, then its samples sorted by label values; label values are
escaped as the format requires. Label sets can be declared up front so that a counter that has never moved
is exported as 0 rather than missing (a missing series breaks ``rate()`` and alert rules).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping

__all__ = ["CONTENT_TYPE", "Metric", "Registry"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[str, ...]
Collector = Callable[[], Mapping[Labels, float]]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Metric:
    def __init__(
        self,
        lock: threading.Lock,
        name: str,
        help_text: str,
        *,
        kind: str,
        labelnames: Labels = (),
        collector: Collector | None = None,
    ) -> None:
        self.name, self.help, self.kind, self.labelnames = name, help_text, kind, labelnames
        self._lock = lock
        self._values: dict[Labels, float] = {} if labelnames else {(): 0.0}
        self._collector = collector

    def _check(self, labels: Labels) -> None:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")

    def declare(self, *labels: str) -> None:
        self._check(labels)
        with self._lock:
            self._values.setdefault(labels, 0.0)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._check(labels)
        if self.kind == "counter" and amount < 0:
            raise ValueError("counters only go up")
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def set(self, *labels: str, value: float) -> None:
        self._check(labels)
        with self._lock:
            self._values[labels] = value

    def value(self, *labels: str) -> float:
        with self._lock:
            return self._values.get(labels, 0.0)

    def samples(self) -> list[tuple[Labels, float]]:
        if self._collector is not None:
            collected = dict(self._collector())
            for labels in collected:
                self._check(labels)
            return sorted(collected.items())
        with self._lock:
            return sorted(self._values.items())

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in self.samples():
            if labels:
                named = zip(self.labelnames, labels, strict=True)
                pairs = ",".join(f'{k}="{_escape_label(v)}"' for k, v in named)
                lines.append(f"{self.name}{{{pairs}}} {format_value(value)}")
            else:
                lines.append(f"{self.name} {format_value(value)}")
        return lines


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, Metric] = {}

    def _add(self, metric: Metric) -> Metric:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def counter(
        self,
        name: str,
        help_text: str,
        labelnames: Labels = (),
        collector: Collector | None = None,
    ) -> Metric:
        return self._add(
            Metric(self._lock, name, help_text, kind="counter", labelnames=labelnames, collector=collector)
        )

    def gauge(
        self,
        name: str,
        help_text: str,
        labelnames: Labels = (),
        collector: Collector | None = None,
    ) -> Metric:
        gauge = Metric(self._lock, name, help_text, kind="gauge", labelnames=labelnames, collector=collector)
        return self._add(gauge)

    def get(self, name: str) -> Metric:
        return self._metrics[name]

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
