"""Daemon counters (``oomd.kills`` and friends), upstream's string -> int map.

Upstream stores 32-bit ints; ours are Python ints. The unix-socket server that exposes
them (``-d``/``-r``) is a separate concern and not part of this module.
"""

from __future__ import annotations

import threading

KILLS = "oomd.kills"
DROPIN_ADDED = "oomd.dropin.added"
DROPIN_FIRED = "oomd.dropin.fired"
CORE_KEYS = (KILLS, DROPIN_ADDED, DROPIN_FIRED)


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}

    def set(self, key: str, value: int) -> None:
        with self._lock:
            self._values[key] = value

    def increment(self, key: str, delta: int = 1) -> None:
        with self._lock:
            self._values[key] = self._values.get(key, 0) + delta

    def get(self, key: str) -> int | None:
        with self._lock:
            return self._values.get(key)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def reset(self) -> None:
        """Zero every value but keep the keys, as upstream's ``r`` request does."""
        with self._lock:
            for key in self._values:
                self._values[key] = 0
