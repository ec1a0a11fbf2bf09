"""Host-wide readings: ``/proc/meminfo``, ``/proc/vmstat``, ``/proc/swaps``,
``/proc/pressure/*`` and swappiness, each read lazily at most once per tick, and the
swap-out rate derived from ``/proc/vmstat`` across ticks.

The proc root is a parameter so tests point it at fixture files; the time of a tick is
given to :meth:`SystemContext.refresh` (the daemon's monotonic clock, or a test's fake
one), so rates need no sleeping in tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from oomd.cgroup import fs
from oomd.cgroup.fs import KeyedValues, Pressure
from oomd.trusted import read_regular
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def _page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 4096


class SystemContext:
    """Per-tick, lazily read host state. Call :meth:`refresh` at the start of a tick."""

    def __init__(
        self,
        proc_root: str = "/proc",
        clock: Callable[[], float] = time.monotonic,
        page_size: int | None = None,
    ) -> None:
        self.proc_root = proc_root.rstrip("/") or "/"
        #: Used for the tick time when :meth:`refresh` is not given one.
        self.clock = clock
        #: Bytes per page, for ``pswpout`` (a count of pages).
        self.page_size = page_size if page_size is not None else _page_size()
        self._cache: dict[str, Any] = {}
        self._now: float | None = None
        #: (tick time, pswpout) of the last swap-out sample, kept across ticks.
        self._swapout_sample: tuple[float, int] | None = None
        #: Sees every file read of the tick (name under the proc root, content or
        #: None): the flight recorder (oomd.recorder). None: nothing to do.
        self.tap: Callable[[str, bytes | None], None] | None = None

    def refresh(self, now: float | None = None) -> None:
        """Start a new tick at time ``now`` (default: the clock's reading)."""
        self._cache = {}
        self._now = now if now is not None else self.clock()

    def now(self) -> float:
        """The time of the current tick."""
        if self._now is None:
            self._now = self.clock()
        return self._now

    def _read(self, name: str) -> bytes | None:
        try:
            data: bytes | None = self._cache["file:" + name]
            return data
        except KeyError:
            data = self._cache["file:" + name] = fs.read_bytes(self.proc_root + "/" + name)
            if self.tap is not None:
                self.tap(name, data)
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

    def read_meminfo(self, path: str | None = None) -> dict[str, int]:
        """A fresh read of ``/proc/meminfo`` (or of ``path``, upstream's
        ``meminfo_location`` test hook), for plugins that need it at start-up. Raises
        OSError when the file cannot be read."""
        target = path if path is not None else self.proc_root + "/meminfo"
        return fs.parse_meminfo(read_regular(target))  # never a FIFO or a device

    def vmstat(self) -> KeyedValues | None:
        """``/proc/vmstat``, or None if unreadable. As upstream HEAD, a line without a
        space makes the whole file unreadable (0.5.0 aborts instead)."""
        try:
            value: KeyedValues | None = self._cache["vmstat"]
            return value
        except KeyError:
            pass
        data = self._read("vmstat")
        if data is not None and any(b" " not in line for line in data.splitlines()):
            data = None
        value = self._cache["vmstat"] = None if data is None else KeyedValues(data)
        return value

    def vmstat_value(self, key: str) -> int:
        """One ``/proc/vmstat`` value; a missing key (or file) reads as 0, as upstream
        indexes its map."""
        stat = self.vmstat()
        value = None if stat is None else stat.get(key)
        return 0 if value is None else value

    def swapout_bps(self) -> float:
        """Bytes swapped out per second since the previous sample (``pswpout`` pages
        times the page size, over the time between the two ticks).

        Sampled only on ticks where something asks, once per tick; a caller that needs
        a rate every tick (``swap_free``) asks in every prerun. 0.0 on the first
        sample, and when ``/proc/vmstat`` or its ``pswpout`` is missing (which also
        restarts the history; upstream crashes on a missing ``pswpout``)."""
        try:
            rate: float = self._cache["swapout_bps"]
            return rate
        except KeyError:
            pass
        now = self.now()
        stat = self.vmstat()
        pages = None if stat is None else stat.get("pswpout")
        previous = self._swapout_sample
        rate = 0.0
        if pages is None:
            self._swapout_sample = None
        else:
            if previous is not None and now > previous[0]:
                rate = (pages - previous[1]) * self.page_size / (now - previous[0])
            self._swapout_sample = (now, pages)
        self._cache["swapout_bps"] = rate
        return rate

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
        """Root cgroup memory usage as upstream computes it: MemTotal - MemFree; absent
        when either key is missing (upstream ``Fs::readRootMemcurrent``)."""
        info = self.meminfo()
        if info is None or "MemTotal" not in info or "MemFree" not in info:
            return None
        return info["MemTotal"] - info["MemFree"]
