"""The per-tick view of the cgroup tree that plugins read.

``OomdContext`` resolves patterns to :class:`CgroupContext` objects and keeps one object
per cgroup across ticks (for history such as the growth average). Every field of a
``CgroupContext`` is read on first use and cached for the rest of the tick - including
a failed read, so one tick sees one consistent snapshot and never retries a missing
file. Nothing here raises for missing, malformed or vanishing files: the value is
simply ``None``.

Cost model (matters at 10,000 cgroups): a tick touches only the cgroups some plugin
asks for; cgroups nobody looked at in the previous tick are forgotten at refresh, so
refresh is O(cgroups used), and memory protection is computed once per parent per tick
(upstream re-resolves every sibling for every candidate, which is quadratic).
"""

from __future__ import annotations

import errno
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol, TypeVar

from oomd.cgroup import fs
from oomd.cgroup.fs import INT64_MAX, IoStat, KeyedValues, Pressure
from oomd.cgroup.path import CgroupPath, CgroupPattern
from oomd.cgroup.system import SystemContext

T = TypeVar("T")


class KillPreference(IntEnum):
    """``trusted.oomd_prefer`` / ``trusted.oomd_avoid`` (or ``user.*``) on a cgroup."""

    AVOID = -1
    NORMAL = 0
    PREFER = 1


_PREFERENCE_XATTRS = (
    ("trusted.oomd_prefer", KillPreference.PREFER),
    ("user.oomd_prefer", KillPreference.PREFER),
    ("trusted.oomd_avoid", KillPreference.AVOID),
    ("user.oomd_avoid", KillPreference.AVOID),
)


class DeviceType(IntEnum):
    SSD = 0
    HDD = 1


@dataclass(frozen=True)
class IoCostCoeffs:
    read_iops: float = 0.0
    readbw: float = 0.0
    write_iops: float = 0.0
    writebw: float = 0.0
    trim_iops: float = 0.0
    trimbw: float = 0.0


DEFAULT_HDD_COEFFS = IoCostCoeffs(1.31e-3, 1.13e-7, 2.58e-1, 5.04e-7, 0.0, 0.0)
DEFAULT_SSD_COEFFS = IoCostCoeffs(1.21e-2, 6.25e-7, 1.07e-3, 2.61e-7, 2.37e-2, 9.10e-10)


@dataclass(frozen=True)
class ContextParams:
    """Daemon-wide parameters some derived values need (``--device`` and coeffs)."""

    io_devices: dict[str, DeviceType] = field(default_factory=dict)
    ssd_coeffs: IoCostCoeffs = DEFAULT_SSD_COEFFS
    hdd_coeffs: IoCostCoeffs = DEFAULT_HDD_COEFFS
    average_size_decay: float = 4.0


@dataclass(frozen=True)
class ActionContext:
    """Which ruleset and detector group started the running action chain."""

    ruleset_name: str = ""
    detector_group: str = ""
    kill_uuid: str = ""
    prekill_hook_deadline: float | None = None


class PauseTarget(Protocol):
    """What a kill plugin needs of the ruleset that invoked it."""

    def pause_actions(self, seconds: float) -> None: ...


_TEMPORAL = ("average_usage", "io_cost_cumulative", "pg_scan_cumulative")
R = TypeVar("R")


def per_tick(compute: Callable[[CgroupContext], R]) -> Callable[[CgroupContext], R]:
    """Memoize a field for the rest of the tick (failures included: one tick sees one
    consistent snapshot and never retries a missing file)."""
    key = compute.__name__

    def field(self: CgroupContext) -> R:
        try:
            return self._cache[key]
        except KeyError:
            pass
        value = self._cache[key] = compute(self)
        return value

    field.__name__ = key
    field.__doc__ = compute.__doc__
    return field


class CgroupContext:
    """One cgroup, its lazily read fields for this tick, and its cross-tick history."""

    __slots__ = ("_cache", "_prev", "ctx", "dead", "inode", "last_tick", "path")

    def __init__(self, ctx: OomdContext, path: CgroupPath, inode: int) -> None:
        self.ctx = ctx
        self.path = path
        self.inode = inode
        self.last_tick = ctx.tick
        #: Set once the context knows this object no longer names the cgroup at its
        #: path (removed, or replaced by a new cgroup of the same name): reads give
        #: None from then on, never the new cgroup's values.
        self.dead = False
        self._cache: dict[str, Any] = {}
        self._prev: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"CgroupContext({self.path.relative or '/'!r})"

    # -- plumbing -----------------------------------------------------------------

    def _read(self, name: str) -> bytes | None:
        if self.dead:
            return None
        return fs.read_bytes(self.path.absolute + "/" + name)

    def _archive(self) -> None:
        cache = self._cache
        self._prev = {k: cache[k] for k in _TEMPORAL if cache.get(k) is not None}
        self._cache = {}

    def _file(self, key: str, filename: str, parse: Callable[[bytes], T]) -> T | None:
        """A field parsed from one file of the cgroup, read at most once per tick."""
        try:
            return self._cache[key]
        except KeyError:
            pass
        data = self._read(filename)
        value = None if data is None else parse(data)
        self._cache[key] = value
        return value

    @property
    def is_root(self) -> bool:
        return not self.path.parts

    # -- raw fields ---------------------------------------------------------------

    @per_tick
    def children(self) -> list[tuple[str, int]]:
        """(name, inode) of each child cgroup directory, dot-names skipped."""
        value: list[tuple[str, int]] = []
        if self.dead:
            return value
        try:
            with os.scandir(self.path.absolute) as it:
                for entry in it:
                    try:
                        if entry.name[0] != "." and entry.is_dir(follow_symlinks=False):
                            value.append((entry.name, entry.inode()))
                    except OSError:
                        continue
        except OSError:
            pass
        value.sort()
        return value

    @per_tick
    def current_usage(self) -> int | None:
        """``memory.current``; for the root, MemTotal - MemFree as upstream."""
        if self.is_root:
            value = self.ctx.system.memory_used()
        else:
            data = self._read("memory.current")
            value = None if data is None else fs.parse_single_int(data)
        return value

    def memory_low(self) -> int | None:
        return self._file("memory_low", "memory.low", fs.parse_limit)

    def memory_min(self) -> int | None:
        return self._file("memory_min", "memory.min", fs.parse_limit)

    def memory_high(self) -> int | None:
        return self._file("memory_high", "memory.high", fs.parse_limit)

    def memory_max(self) -> int | None:
        return self._file("memory_max", "memory.max", fs.parse_limit)

    def swap_max(self) -> int | None:
        return self._file("swap_max", "memory.swap.max", fs.parse_limit)

    def memory_high_tmp(self) -> int | None:
        return self._file("memory_high_tmp", "memory.high.tmp", fs.parse_limit_tmp)

    def swap_usage(self) -> int | None:
        return self._file("swap_usage", "memory.swap.current", fs.parse_single_int)

    def memory_stat(self) -> KeyedValues | None:
        return self._file("memory_stat", "memory.stat", KeyedValues)

    def memory_stat_value(self, key: str) -> int | None:
        stat = self.memory_stat()
        return None if stat is None else stat.get(key)

    def anon_usage(self) -> int | None:
        return self.memory_stat_value("anon")

    def _pressure(self, resource: str, full: bool) -> Pressure | None:
        key = ("full:" if full else "some:") + resource
        cache = self._cache
        try:
            return cache[key]
        except KeyError:
            pass
        value: Pressure | None
        if self.is_root:
            value = self.ctx.system.pressure(resource, full)
        else:
            # One read of the file serves both its some and full lines.
            raw_key = "psi:" + resource
            try:
                data = cache[raw_key]
            except KeyError:
                data = cache[raw_key] = self._read(resource + ".pressure")
            value = None if data is None else fs.parse_pressure(data, full)
        cache[key] = value
        return value

    def mem_pressure(self) -> Pressure | None:
        """Memory PSI, ``full`` line (what every upstream plugin means by pressure)."""
        return self._pressure("memory", True)

    def mem_pressure_some(self) -> Pressure | None:
        return self._pressure("memory", False)

    def io_pressure(self) -> Pressure | None:
        return self._pressure("io", True)

    def io_pressure_some(self) -> Pressure | None:
        return self._pressure("io", False)

    def pressure(self, resource: str, full: bool = True) -> Pressure | None:
        return self._pressure(resource, full)

    def io_stat(self) -> list[IoStat] | None:
        return self._file("io_stat", "io.stat", fs.parse_io_stat)

    def cgroup_stat(self) -> KeyedValues | None:
        return self._file("cgroup_stat", "cgroup.stat", KeyedValues)

    def nr_dying_descendants(self) -> int | None:
        """``cgroup.stat`` nr_dying_descendants: 0 if the key is missing, None if the
        file is."""
        stat = self.cgroup_stat()
        if stat is None:
            return None
        value = stat.get("nr_dying_descendants")
        return 0 if value is None else value

    def is_populated(self) -> bool | None:
        return self._file("is_populated", "cgroup.events", fs.parse_populated)

    def oom_group(self) -> bool | None:
        return self._file("oom_group", "memory.oom.group", fs.parse_oom_group)

    @per_tick
    def controllers(self) -> frozenset[str] | None:
        data = self._read("cgroup.controllers")
        value = None if data is None else frozenset(data.decode(errors="replace").split())
        return value

    def pids(self) -> list[int] | None:
        return self._file("pids", "cgroup.procs", fs.parse_pids)

    @per_tick
    def xattr_names(self) -> frozenset[str] | None:
        """Names of the extended attributes on the cgroup directory (one syscall)."""
        try:
            return frozenset(os.listxattr(self.path.absolute))
        except OSError as e:
            return frozenset() if e.errno in (errno.ENOTSUP, errno.ENODATA) else None

    def has_xattr(self, name: str) -> bool:
        names = self.xattr_names()
        return names is not None and name in names

    @per_tick
    def kill_preference(self) -> KillPreference:
        """PREFER/AVOID from xattrs (presence only, first match wins), else NORMAL."""
        value = KillPreference.NORMAL
        names = self.xattr_names()
        if names:
            for name, preference in _PREFERENCE_XATTRS:
                if name in names:
                    value = preference
                    break
        return value

    # -- derived fields -------------------------------------------------------------

    def raw_protection(self) -> int | None:
        """min(memory.current, max(memory.min, memory.low))."""
        current = self.current_usage()
        low = self.memory_low()
        minimum = self.memory_min()
        if current is None or low is None or minimum is None:
            return None
        return min(current, max(minimum, low))

    @per_tick
    def children_protection_sum(self) -> int:
        """Sum of raw protection over all children (absent counts 0); once per tick."""
        value = 0
        for child in self.ctx.children(self):
            value += child.raw_protection() or 0
        return value

    @per_tick
    def memory_protection(self) -> int | None:
        """The memory.low/min protection this cgroup actually receives (upstream's
        recursive proportional split of the parent's protection)."""
        if self.is_root:
            value = self.current_usage()
        elif len(self.path.parts) == 1:
            value = self.raw_protection()
        else:
            parent = self.ctx.get(self.path.parent())
            if parent is None:
                value = None
            else:
                total = parent.children_protection_sum()
                if total == 0:
                    value = 0
                else:
                    raw = self.raw_protection()
                    parent_protection = parent.memory_protection()
                    if raw is None or parent_protection is None:
                        value = None
                    else:
                        value = int(raw * min(1.0, parent_protection / total))
        return value

    def effective_usage(self) -> int | None:
        """memory.current minus the protection the cgroup receives."""
        current = self.current_usage()
        protection = self.memory_protection()
        if current is None or protection is None:
            return None
        return current - protection

    @per_tick
    def average_usage(self) -> int | None:
        """Exponential moving average of memory.current (decay 4). History exists only
        if this was computed on the previous tick too; otherwise it restarts from 0,
        so a first sighting gives current/4 (growth 4.0), as upstream."""
        current = self.current_usage()
        if current is None:
            value = None
        else:
            decay = self.ctx.params.average_size_decay
            previous = self._prev.get("average_usage", 0)
            value = int(previous * ((decay - 1) / decay) + current / decay)
        return value

    def memory_growth(self) -> float | None:
        current = self.current_usage()
        average = self.average_usage()
        if current is None or average is None:
            return None
        if average == 0:
            return 0.0
        return current / average

    @per_tick
    def io_cost_cumulative(self) -> float | None:
        stats = self.io_stat()
        if stats is None:
            value = None
        else:
            params = self.ctx.params
            cost = 0.0
            for stat in stats:
                device = params.io_devices.get(stat.dev)
                if device is None:
                    continue
                c = params.ssd_coeffs if device == DeviceType.SSD else params.hdd_coeffs
                cost += (
                    stat.rios * c.read_iops
                    + stat.rbytes * c.readbw
                    + stat.wios * c.write_iops
                    + stat.wbytes * c.writebw
                    + stat.dios * c.trim_iops
                    + stat.dbytes * c.trimbw
                )
            value = cost
        return value

    def io_cost_rate(self) -> float | None:
        """Change in io cost since the previous tick; 0 when there is no history."""
        current = self.io_cost_cumulative()
        if current is None:
            return None
        previous = self._prev.get("io_cost_cumulative")
        return 0.0 if previous is None else current - previous

    @per_tick
    def pg_scan_cumulative(self) -> int | None:
        value = self.memory_stat_value("pgscan")
        return value

    def pg_scan_rate(self) -> int | None:
        """Change in pgscan since the previous tick; None when there is no history."""
        current = self.pg_scan_cumulative()
        previous = self._prev.get("pg_scan_cumulative")
        if current is None or previous is None:
            return None
        return int(current - previous)

    @per_tick
    def effective_swap_max(self) -> int | None:
        """min(memory.swap.max) over the cgroup and its ancestors; root: swap total."""
        if self.is_root:
            return self.ctx.system.swaps()[0]
        parent = self.ctx.get(self.path.parent())
        parent_value = None if parent is None else parent.effective_swap_max()
        own = self.swap_max()
        return None if parent_value is None or own is None else min(parent_value, own)

    @per_tick
    def effective_swap_free(self) -> int | None:
        if self.is_root:
            total, used = self.ctx.system.swaps()
            value = total - used
        else:
            own_max = self.swap_max()
            usage = self.swap_usage()
            parent = self.ctx.get(self.path.parent())
            if own_max is None or usage is None or parent is None:
                value = None
            else:
                parent_value = parent.effective_swap_free()
                value = None if parent_value is None else min(parent_value, own_max - usage)
        return value

    @per_tick
    def effective_swap_util_pct(self) -> float | None:
        if self.is_root:
            total, used = self.ctx.system.swaps()
            value = 0.0 if total == 0 else used / total
        else:
            own_max = self.swap_max()
            if own_max is None:
                value = None
            elif own_max == 0:
                value = 0.0
            else:
                usage = self.swap_usage()
                parent = self.ctx.get(self.path.parent())
                if usage is None or parent is None:
                    value = None
                else:
                    parent_value = parent.effective_swap_util_pct()
                    value = None if parent_value is None else max(parent_value, usage / own_max)
        return value

    def is_valid(self) -> bool:
        """The directory still exists as the same cgroup (same inode). Checked right
        before a kill, so a cgroup re-created since it was ranked is never killed."""
        if self.dead:
            return False
        try:
            return os.stat(self.path.absolute).st_ino == self.inode
        except OSError:
            return False


class OomdContext:
    """The daemon's view of the world for one tick, shared by every plugin."""

    def __init__(
        self,
        cgroup_fs: str,
        system: SystemContext | None = None,
        clock: Callable[[], float] = time.monotonic,
        params: ContextParams | None = None,
    ) -> None:
        self.cgroup_fs = cgroup_fs.rstrip("/") or "/"
        self.system = system if system is not None else SystemContext()
        self.clock = clock
        self.params = params if params is not None else ContextParams()
        self.tick = 0
        self.cgroups: dict[str, CgroupContext] = {}
        self.action_context = ActionContext()
        self.invoking_ruleset: PauseTarget | None = None
        self.ruleset_cgroup: CgroupPath | None = None
        #: Set by the engine: fires the first matching prekill hook for a victim and
        #: returns its invocation (or None when no hook matches).
        self.prekill_hook_handler: Callable[[CgroupContext, ActionContext], Any] | None = None
        self._resolved: dict[tuple[object, ...], list[CgroupContext]] = {}

    def now(self) -> float:
        return self.clock()

    def refresh(self) -> None:
        """Start a new tick: archive history, forget cgroups nobody used last tick."""
        previous = self.tick
        self.tick += 1
        self.system.refresh(self.clock())
        self._resolved = {}
        stale = []
        for key, cgroup in self.cgroups.items():
            if cgroup.last_tick != previous:
                stale.append(key)
            else:
                cgroup._archive()
        for key in stale:
            self.cgroups.pop(key).dead = True

    def _adopt(self, path: CgroupPath, inode: int) -> CgroupContext:
        key = path.absolute
        cgroup = self.cgroups.get(key)
        if cgroup is None or cgroup.inode != inode:
            # New, or removed and re-created under the same name: no history.
            if cgroup is not None:
                cgroup.dead = True
            cgroup = self.cgroups[key] = CgroupContext(self, path, inode)
        cgroup.last_tick = self.tick
        return cgroup

    def root(self) -> CgroupContext | None:
        return self.get(CgroupPath(self.cgroup_fs))

    def get(self, path: CgroupPath) -> CgroupContext | None:
        """The context for an existing cgroup directory, or None."""
        cgroup = self.cgroups.get(path.absolute)
        if cgroup is not None and cgroup.last_tick == self.tick:
            return cgroup
        try:
            st = os.stat(path.absolute)
        except OSError:
            return None
        if (st.st_mode & 0o170000) != 0o040000:
            return None
        return self._adopt(path, st.st_ino)

    def children(self, cgroup: CgroupContext) -> list[CgroupContext]:
        """Contexts of a cgroup's child cgroups (as listed this tick)."""
        path = cgroup.path
        return [self._adopt(path.child(name), inode) for name, inode in cgroup.children()]

    def resolve(
        self,
        patterns: Sequence[CgroupPattern],
        ruleset_patterns: Sequence[CgroupPattern] = (),
    ) -> list[CgroupContext]:
        """Existing cgroups matching any pattern (``ruleset_patterns`` taken relative to
        the active per-cgroup ruleset's cgroup), de-duplicated, sorted by path so that
        every later decision is deterministic. Cached for the tick."""
        base = self.ruleset_cgroup
        key = (tuple(p.text for p in patterns), tuple(p.text for p in ruleset_patterns), base)
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        found: dict[str, tuple[CgroupPath, int]] = {}
        for pattern in patterns:
            for path, inode in pattern.resolve():
                found.setdefault(path.absolute, (path, inode))
        if base is not None:
            for pattern in ruleset_patterns:
                for path, inode in pattern.under(base).resolve():
                    found.setdefault(path.absolute, (path, inode))
        result = [self._adopt(path, inode) for path, inode in found.values()]
        result.sort(key=lambda c: c.path.parts)
        self._resolved[key] = result
        return result


def fmt_mb(value: int) -> int:
    """Bytes to whole MiB as upstream logs them (``/ 1024 / 1024``)."""
    return int(value / 1048576) if value < 0 else value >> 20


def is_finite(value: float) -> bool:
    return not (math.isinf(value) or math.isnan(value))


__all__ = [
    "INT64_MAX",
    "ActionContext",
    "CgroupContext",
    "ContextParams",
    "DeviceType",
    "IoCostCoeffs",
    "KillPreference",
    "OomdContext",
    "PauseTarget",
]
