"""Host-wide readings: ``/proc/meminfo``, ``/proc/vmstat``, ``/proc/swaps``,
``/proc/pressure/*`` and swappiness, each read lazily at most once per tick.

The proc root is a parameter so tests point it at fixture files.
"""

from __future__ import annotations

from typing import Any

from oomd.cgroup import fs
from oomd.cgroup.fs import KeyedValues, Pressure


class SystemContext:
    """Per-tick, lazily read host state. Call :meth:`refresh` at the start of a tick."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root.rstrip("/") or "/"
        self._cache: dict[str, Any] = {}

    def refresh(self) -> None:
        self._cache = {}

    def _read(self, name: str) -> bytes | None:
        try:
            data: bytes | None = self._cache["file:" + name]
            return data
        except KeyError:
            data = self._cache["file:" + name] = fs.read_bytes(self.proc_root + "/" + name)
            return data

    def meminfo(self) -> dict[str, int] | None:
        """``/proc/meminfo`` in bytes, or None if unreadable."""
        try:
            info: dict[str, int] | None = self._cache["meminfo"]
            return info
        except KeyError:
            data = self._read("meminfo")
            info = self._cache["meminfo"] = None if data is None else fs.parse_meminfo(data)
            return info

    def meminfo_value(self, key: str) -> int:
        """One meminfo value in bytes; missing keys (or file) read as 0, as upstream."""
        info = self.meminfo()
        return 0 if info is None else info.get(key, 0)

    def vmstat(self) -> KeyedValues | None:
        data = self._read("vmstat")
        return None if data is None else KeyedValues(data)

    def swaps(self) -> tuple[int, int]:
        """(total, used) swap bytes from ``/proc/swaps``; (0, 0) when absent."""
        data = self._read("swaps")
        parsed = None if data is None else fs.parse_swaps(data)
        return parsed or (0, 0)

    def swappiness(self) -> int | None:
        data = self._read("sys/vm/swappiness")
        return None if data is None else fs.parse_single_int(data)

    def pressure(self, resource: str, full: bool) -> Pressure | None:
        """``/proc/pressure/<resource>`` (memory falls back to ``/proc/mempressure``)."""
        data = self._read("pressure/" + resource)
        if data is None and resource == "memory":
            data = self._read("mempressure")
        return None if data is None else fs.parse_pressure(data, full)

    def memory_used(self) -> int | None:
        """Root cgroup memory usage as upstream computes it: MemTotal - MemFree."""
        info = self.meminfo()
        if info is None:
            return None
        return info.get("MemTotal", 0) - info.get("MemFree", 0)
