"""The portal's figures, kept for a minute per (client, period, host): a month over a million alerts takes a
second or more to aggregate, and twenty people opening the same dashboard must not each pay it (bench/analytics.py:
page p95 with 20 users). One computation per key at a time (the others wait for it, then read it); in-process,
bounded in entries. The key's client is the one the token authenticated, so one client's entry is never another's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
TTL_SECONDS = 60.0
MAX_ENTRIES = 256


class TTLCache(Generic[T]):
    def __init__(
        self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.max_entries, self.clock = ttl, max_entries, clock
        self._entries: dict[Hashable, tuple[float, T]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def _fresh(self, key: Hashable) -> tuple[bool, T | None]:
        entry = self._entries.get(key)
        if entry is not None and self.clock() - entry[0] < self.ttl:
            return True, entry[1]
        return False, None

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            hit, value = self._fresh(key)
            if hit:
                return value  # type: ignore[return-value]
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                hit, value = self._fresh(key)
            if hit:
                return value  # type: ignore[return-value]
            computed = compute()  # outside the cache's lock: other keys go on meanwhile
            with self._lock:
                if len(self._entries) >= self.max_entries:
                    now = self.clock()
                    self._entries = {k: v for k, v in self._entries.items() if now - v[0] < self.ttl}
                    while len(self._entries) >= self.max_entries:
                        self._entries.pop(next(iter(self._entries)))
                    self._locks = {k: lk for k, lk in self._locks.items() if k in self._entries or k == key}
                self._entries[key] = (self.clock(), computed)
            return computed
