"""The per-tick view of the cgroup tree that plugins read.

``OomdContext`` resolves patterns to :class:`CgroupContext` objects and keeps one object
per cgroup across ticks (for history such as the growth average). Every field of a
``CgroupContext`` is read on first use and cached for the rest of the tick - including
a failed read, so one tick sees one consistent snapshot and never retries a missing
file. Nothing here raises for missing, malformed or vanishing files: the value is
simply ``None``.

Cost model (matters at 10,000 cgroups; bench/README.md has the numbers): a tick
touches only the cgroups some plugin asks for; cgroups nobody looked at in the previous
tick are forgotten at refresh, so refresh is O(cgroups used). Every step is linear in
the cgroups touched - no quadratic step anywhere: memory protection sums the siblings
once per parent per tick (upstream re-resolves every sibling for every candidate), a
pattern is resolved once per tick (one ``scandir`` per wildcard directory), and a
cgroup seen before is found by its path string without building a new path object.
Files are opened relative to a descriptor of the cgroup filesystem's root (one
``openat``, no walk through ``/sys/fs/cgroup``'s mounts), read with one ``read``, and
parsed only for the fields asked for.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator, Sequence
from enum import IntEnum
from operator import itemgetter

from oomd.cgroup import fs
from oomd.cgroup.fs import IoStat, KeyedValues, Pressure
from oomd.cgroup.iocost import (
    DEFAULT_HDD_COEFFS,
    DEFAULT_SSD_COEFFS,
    DeviceType,
    IoCostCoeffs,
    io_cost,
)
from oomd.cgroup.path import CgroupPath, CgroupPattern
from oomd.cgroup.system import SystemContext
from oomd.cgroup.triggers import CgroupFiles, is_cgroup2, threshold_trigger
from oomd.cnum import INT64_MAX
from oomd.typeshim import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

if TYPE_CHECKING:
    from typing import Any, ClassVar

    from oomd.cgroup.triggers import PressureTriggers, Trigger

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


class ContextParams(NamedTuple):
    """Daemon-wide parameters some derived values need (``--device`` and coeffs)."""

    #: (The default is one shared empty dict: nothing mutates the params.)
    io_devices: dict[str, DeviceType] = {}
    ssd_coeffs: IoCostCoeffs = DEFAULT_SSD_COEFFS
    hdd_coeffs: IoCostCoeffs = DEFAULT_HDD_COEFFS
    average_size_decay: float = 4.0


class ActionContext(NamedTuple):
    """Which ruleset and detector group started the running action chain."""

    ruleset_name: str = ""
    detector_group: str = ""
    kill_uuid: str = ""
    prekill_hook_deadline: float | None = None


class PauseTarget(Protocol):
    """What an action needs of the ruleset that invoked it."""

    post_action_delay: int

    def pause_actions(self, seconds: float) -> None: ...


_MISSING: Any = object()
_NO_XATTRS: frozenset[str] = frozenset()
R = TypeVar("R")

#: The per-tick fields that a tick reads for every cgroup it ranks or logs (pressure,
#: usage, protection, growth, xattrs): each has a slot of its own in the context.
#: Every other field lives in one side record (:class:`_TickRecord`), made on the first
#: read of any of them in a tick: a slot costs 8 bytes per cgroup whether or not it is
#: ever read, and at 10,000 cgroups 35 slots cost 2 MB more than these few.
_HOT_FIELDS = frozenset(
    {
        "current_usage",
        "_psi_memory",
        "mem_pressure",
        "memory_low",
        "memory_min",
        "memory_protection",
        "effective_usage",
        "average_usage",
        "xattr_names",
    }
)
#: The slot of each per-tick field, in definition order (filled by :func:`per_tick`):
#: in the context (hot) or in its side record (cold).
_TICK_SLOTS: list[str] = []
_COLD_SLOTS: list[str] = []


def per_tick(compute: Callable[[CgroupContext], R]) -> Callable[[CgroupContext], R]:
    """The one per-tick memoizer of a cgroup's fields: the first call in a tick
    computes the value (a file read, a parse, a derivation) and keeps it in a slot
    (``_t_<name>``) until :meth:`CgroupContext._archive` resets every such slot for
    the next tick. Failures (None) are kept too: one tick sees one consistent snapshot
    and never retries a missing file. Slots rather than a per-cgroup dict: no dict
    (272 bytes with 6-10 keys) per cgroup, and a first read raises nothing. The slot is
    the context's own for the fields of ``_HOT_FIELDS``, else the side record's."""
    slot = "_t_" + compute.__name__
    field: Callable[[CgroupContext], R]
    if compute.__name__ in _HOT_FIELDS:
        _TICK_SLOTS.append(slot)

        def field(self: CgroupContext) -> R:
            value: R = getattr(self, slot)
            if value is _MISSING:
                value = compute(self)
                setattr(self, slot, value)
            return value

    else:
        _COLD_SLOTS.append(slot)

        def field(self: CgroupContext) -> R:
            record = self._tick_record
            if record is None:
                record = self._tick_record = _TickRecord()
            value: R = getattr(record, slot)
            if value is _MISSING:
                # computed before it is stored: a field may read other cold fields
                value = compute(self)
                setattr(record, slot, value)
            return value

    field.__name__ = compute.__name__
    field.__qualname__ = compute.__qualname__
    field.__doc__ = compute.__doc__
    return field


class CgroupContext:
    """One cgroup, its lazily read fields for this tick, and its cross-tick history."""

    _FIXED_SLOTS = (
        "_prev_average",
        "_prev_io_cost",
        "_prev_pg_scan",
        "_rooted",
        "ctx",
        "dead",
        "inode",
        "is_root",
        "last_tick",
        "path",
        "_tick_record",
    )

    # The per-tick slots read by name (the others only through their field).
    _t_average_usage: int | None
    _tick_record: _TickRecord | None

    def __init__(self, ctx: OomdContext, path: CgroupPath, inode: int) -> None:
        self.ctx = ctx
        self.path = path
        self.inode = inode
        self.last_tick = ctx.tick
        self.is_root: bool = not path.parts
        #: Set once the context knows this object no longer names the cgroup at its
        #: path (removed, or replaced by a new cgroup of the same name): reads give
        #: None from then on, never the new cgroup's values.
        self.dead = False
        self._reset()
        # Last tick's values of the fields that have history (None: not computed).
        self._prev_average: int | None = None
        self._prev_io_cost: float | None = None
        self._prev_pg_scan: int | None = None
        #: Files are opened relative to the context's root fd (False: the path lies
        #: outside ``ctx.cgroup_fs``; read by absolute path).
        self._rooted = path.fs == ctx.cgroup_fs

    def __repr__(self) -> str:
        return f"CgroupContext({self.path.relative or '/'!r})"

    # -- plumbing -----------------------------------------------------------------

    def _read(self, name: str) -> bytes | None:
        if self.dead:
            return None
        ctx = self.ctx
        if self._rooted and ctx._root_fd >= 0:
            # The path below the root: the absolute path past "<cgroup_fs>/".
            rel = self.path.absolute[ctx._fs_prefix :]
            data = fs.read_bytes(rel + "/" + name if rel else name, ctx._root_fd)
        else:
            data = fs.read_bytes(self.path.absolute + "/" + name)
        if ctx.tap is not None:
            ctx.tap(self, name, data)
        return data

    def _archive(self) -> None:
        """Keep last tick's values of the fields with history; forget the rest."""
        average = self._t_average_usage
        self._prev_average = None if average is _MISSING else average
        record = self._tick_record
        if record is None:
            self._prev_io_cost = self._prev_pg_scan = None
        else:
            io_cost = record._t_io_cost_cumulative
            pg_scan = record._t_pg_scan_cumulative
            self._prev_io_cost = None if io_cost is _MISSING else io_cost
            self._prev_pg_scan = None if pg_scan is _MISSING else pg_scan
        self._reset()

    def is_cached(self, name: str) -> bool:
        """Whether the per-tick field ``name`` was computed this tick (for tests)."""
        slot = "_t_" + name
        record = self._tick_record if slot in _COLD_SLOTS else self
        return getattr(record, slot, _MISSING) is not _MISSING

    def _file(self, filename: str, parse: Callable[[bytes], T]) -> T | None:
        """One file of the cgroup, parsed (callers memoize with :func:`per_tick`)."""
        data = self._read(filename)
        return None if data is None else parse(data)

    def parent(self) -> CgroupContext | None:
        """The parent cgroup's context this tick (None for the root, or when the
        parent directory is gone); found by its path string when already known."""
        path = self.path
        parts = path.parts
        if not parts:
            return None
        key = path.fs if len(parts) == 1 else path.absolute[: -len(parts[-1]) - 1]
        ctx = self.ctx
        known = ctx.cgroups.get(key)
        if known is not None and known.last_tick == ctx.tick:
            return known
        return ctx.get(path.parent())

    # -- raw fields ---------------------------------------------------------------

    def children(self) -> list[tuple[str, int]]:
        """(name, inode) of each child cgroup directory, dot-names skipped, sorted;
        the same listing as ``ctx.children`` for the rest of the tick."""
        return [(c.path.parts[-1], c.inode) for c in self.ctx.children(self)]

    def _child_entries(self) -> Iterator[tuple[str, int]]:
        """One ``scandir`` of the cgroup's directory: (name, inode) of each child."""
        if not self.dead:
            yield from fs.child_dirs(self.path.absolute)

    @per_tick
    def current_usage(self) -> int | None:
        """``memory.current``; for the root, MemTotal - MemFree as upstream."""
        if self.is_root:
            value = self.ctx.system.memory_used()
        else:
            data = self._read("memory.current")
            value = None if data is None else fs.parse_single_int(data)
        return value

    @per_tick
    def memory_low(self) -> int | None:
        return self._file("memory.low", fs.parse_limit)

    @per_tick
    def memory_min(self) -> int | None:
        return self._file("memory.min", fs.parse_limit)

    @per_tick
    def memory_high(self) -> int | None:
        return self._file("memory.high", fs.parse_limit)

    @per_tick
    def memory_max(self) -> int | None:
        return self._file("memory.max", fs.parse_limit)

    @per_tick
    def swap_max(self) -> int | None:
        return self._file("memory.swap.max", fs.parse_limit)

    @per_tick
    def memory_high_tmp(self) -> int | None:
        return self._file("memory.high.tmp", fs.parse_limit_tmp)

    @per_tick
    def swap_usage(self) -> int | None:
        return self._file("memory.swap.current", fs.parse_single_int)

    @per_tick
    def memory_stat(self) -> KeyedValues | None:
        return self._file("memory.stat", KeyedValues)

    def memory_stat_value(self, key: str) -> int | None:
        stat = self.memory_stat()
        return None if stat is None else stat.get(key)

    def anon_usage(self) -> int | None:
        return self.memory_stat_value("anon")

    @per_tick
    def _psi_memory(self) -> bytes | None:
        """The raw ``memory.pressure``: one read serves its some and full lines."""
        return self._read("memory.pressure")

    @per_tick
    def _psi_io(self) -> bytes | None:
        return self._read("io.pressure")

    @per_tick
    def _psi_cpu(self) -> bytes | None:
        return self._read("cpu.pressure")

    def _pressure(self, resource: str, full: bool, raw: bytes | None) -> Pressure | None:
        if self.is_root:
            return self.ctx.system.pressure(resource, full)
        return None if raw is None else fs.parse_pressure(raw, full)

    @per_tick
    def mem_pressure(self) -> Pressure | None:
        """Memory PSI, ``full`` line (what every upstream plugin means by pressure)."""
        return self._pressure("memory", True, None if self.is_root else self._psi_memory())

    @per_tick
    def mem_pressure_some(self) -> Pressure | None:
        return self._pressure("memory", False, None if self.is_root else self._psi_memory())

    @per_tick
    def io_pressure(self) -> Pressure | None:
        return self._pressure("io", True, None if self.is_root else self._psi_io())

    @per_tick
    def io_pressure_some(self) -> Pressure | None:
        return self._pressure("io", False, None if self.is_root else self._psi_io())

    @per_tick
    def _cpu_pressure(self) -> Pressure | None:
        return self._pressure("cpu", True, None if self.is_root else self._psi_cpu())

    @per_tick
    def _cpu_pressure_some(self) -> Pressure | None:
        return self._pressure("cpu", False, None if self.is_root else self._psi_cpu())

    def pressure(self, resource: str, full: bool = True) -> Pressure | None:
        field = _PRESSURE_FIELDS.get((resource, full))
        if field is not None:
            return field(self)
        # Not a kernel PSI resource: nothing to memoize (the file does not exist).
        raw = None if self.is_root else self._read(resource + ".pressure")
        return self._pressure(resource, full, raw)

    @per_tick
    def _child_contexts(self) -> list[CgroupContext]:
        """The children's contexts, as listed this tick (see ``OomdContext.children``)."""
        return self.ctx._list_children(self)

    @per_tick
    def io_stat(self) -> list[IoStat] | None:
        return self._file("io.stat", fs.parse_io_stat)

    @per_tick
    def cgroup_stat(self) -> KeyedValues | None:
        return self._file("cgroup.stat", KeyedValues)

    def nr_dying_descendants(self) -> int | None:
        """``cgroup.stat`` nr_dying_descendants: 0 if the key is missing, None if the
        file is."""
        stat = self.cgroup_stat()
        if stat is None:
            return None
        value = stat.get("nr_dying_descendants")
        return 0 if value is None else value

    @per_tick
    def is_populated(self) -> bool | None:
        return self._file("cgroup.events", fs.parse_populated)

    @per_tick
    def oom_group(self) -> bool | None:
        return self._file("memory.oom.group", fs.parse_oom_group)

    @per_tick
    def controllers(self) -> frozenset[str] | None:
        data = self._read("cgroup.controllers")
        value = None if data is None else frozenset(data.decode(errors="replace").split())
        return value

    @per_tick
    def pids(self) -> list[int] | None:
        return self._file("cgroup.procs", fs.parse_pids)

    @per_tick
    def xattr_names(self) -> frozenset[str] | None:
        """Names of the extended attributes on the cgroup directory (one syscall)."""
        if self.dead:
            return None
        names: list[str] | None
        try:
            names = os.listxattr(self.path.absolute)
        except OSError as e:
            names = [] if e.errno in (errno.ENOTSUP, errno.ENODATA) else None
        # Most cgroups have none: share one empty set (216 bytes per cgroup otherwise).
        value = None if names is None else frozenset(names) if names else _NO_XATTRS
        if self.ctx.tap is not None:
            self.ctx.tap(self, "xattrs", value)
        return value

    def has_xattr(self, name: str) -> bool:
        names = self.xattr_names()
        return names is not None and name in names

    def kill_preference(self) -> KillPreference:
        """PREFER/AVOID from xattrs (presence only, first match wins), else NORMAL;
        as stable within a tick as the xattr names it is derived from.

        ``user.*`` ones count only on a cgroup owned by root: any user can set them on
        the cgroups delegated to it (``user@UID.service/*``), and ``user.oomd_avoid``
        there would push a kill onto another user's cgroups. systemd-oomd also honours
        them where the cgroup's owner owns the monitored prefix; a pattern has no such
        prefix (``user.slice/*/*`` spans users), so only root's count here.
        ``trusted.*`` needs CAP_SYS_ADMIN to set and always counts."""
        value = KillPreference.NORMAL
        names = self.xattr_names()
        if names:
            for name, preference in _PREFERENCE_XATTRS:
                if name in names and (not name.startswith("user.") or self._owned_by_root()):
                    value = preference
                    break
        return value

    def _owned_by_root(self) -> bool:
        try:
            return os.stat(self.path.absolute, follow_symlinks=False).st_uid == 0
        except (OSError, ValueError):
            return False

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
        recursive proportional split of the parent's protection).

        Linear, not quadratic: the siblings' sum is :meth:`children_protection_sum`,
        computed once per parent per tick, and the parent's own protection is cached
        too, so ranking N siblings reads each sibling's files once."""
        if self.is_root:
            value = self.current_usage()
        elif len(self.path.parts) == 1:
            value = self.raw_protection()
        else:
            parent = self.parent()
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

    @per_tick
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
            previous = self._prev_average or 0
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
            value = io_cost(stats, params.io_devices, params.ssd_coeffs, params.hdd_coeffs)
        return value

    def io_cost_rate(self) -> float | None:
        """Change in io cost since the previous tick; 0 when there is no history."""
        current = self.io_cost_cumulative()
        if current is None:
            return None
        previous = self._prev_io_cost
        return 0.0 if previous is None else current - previous

    @per_tick
    def pg_scan_cumulative(self) -> int | None:
        value = self.memory_stat_value("pgscan")
        return value

    def pg_scan_rate(self) -> int | None:
        """Change in pgscan since the previous tick; None when there is no history."""
        current = self.pg_scan_cumulative()
        previous = self._prev_pg_scan
        if current is None or previous is None:
            return None
        return int(current - previous)

    @per_tick
    def effective_swap_max(self) -> int | None:
        """min(memory.swap.max) over the cgroup and its ancestors; root: swap total."""
        if self.is_root:
            return self.ctx.system.swaps()[0]
        parent = self.parent()
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
            parent = self.parent()
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
                parent = self.parent()
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

    __slots__ = (*_FIXED_SLOTS, *_TICK_SLOTS)

    # Every per-tick slot back to "not computed", the side record dropped: one
    # statement, so a tick pays one specialised store per slot (setattr in a loop costs
    # ~4x as much).
    _ns: dict[str, Any] = {"_MISSING": _MISSING}
    exec(
        "def _reset(self):\n    self._tick_record = None\n"
        "    self." + " = self.".join(_TICK_SLOTS) + " = _MISSING\n",
        _ns,
    )
    _reset: ClassVar[Callable[[CgroupContext], None]] = _ns["_reset"]
    del _ns


class _TickRecord:
    """A cgroup's cold per-tick fields for one tick (see ``_HOT_FIELDS``): made on
    the first read of one of them, dropped at the next tick."""

    __slots__ = tuple(_COLD_SLOTS)

    _t_io_cost_cumulative: float | None
    _t_pg_scan_cumulative: int | None

    _ns: dict[str, Any] = {"_MISSING": _MISSING}
    exec("def __init__(self):\n    self." + " = self.".join(_COLD_SLOTS) + " = _MISSING\n", _ns)
    __init__: ClassVar[Callable[[_TickRecord], None]] = _ns["__init__"]
    del _ns


_PRESSURE_FIELDS: dict[tuple[str, bool], Callable[[CgroupContext], Pressure | None]] = {
    ("memory", True): CgroupContext.mem_pressure,
    ("memory", False): CgroupContext.mem_pressure_some,
    ("io", True): CgroupContext.io_pressure,
    ("io", False): CgroupContext.io_pressure_some,
    ("cpu", True): CgroupContext._cpu_pressure,
    ("cpu", False): CgroupContext._cpu_pressure_some,
}


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
        #: Length of "<cgroup_fs>/", the prefix of every cgroup's absolute path below it.
        self._fs_prefix = len(self.cgroup_fs) + 1 if self.cgroup_fs != "/" else 1
        self._root = _RootDir(self.cgroup_fs)
        self._root_fd = self._root.check()
        #: The daemon's PSI triggers (oomd.cgroup.triggers); None (tests, ``-c``): every
        #: watched pressure file is polled.
        self.triggers: PressureTriggers | None = None
        self._root_is_cgroup2: bool | None = None
        #: Sees every cgroup file read (and xattr listing, as "xattrs") of the tick:
        #: the flight recorder (oomd.recorder). None: nothing to do.
        self.tap: Callable[[CgroupContext, str, object], None] | None = None

    def now(self) -> float:
        return self.clock()

    def close(self) -> None:
        """Close the root directory descriptor (reads go by absolute path after)."""
        self._root.close()
        self._root_fd = -1

    # -- PSI triggers -------------------------------------------------------------------

    def watch_pressure(
        self, cgroup: CgroupContext, resource: str, kind: str, stall_us: int, window_us: int
    ) -> Trigger | None:
        """Declare, during a detector's ``run``, that this tick watches ``cgroup``'s
        ``resource`` pressure: the daemon keeps a kernel PSI trigger ``<kind>
        <stall_us> <window_us>`` on it and runs an early tick when it fires
        (oomd.cgroup.triggers). Returns the trigger (its ``events`` count how often it
        fired), or None when the file is polled instead (no daemon, fake tree, old
        kernel, over the limit; logged once)."""
        triggers = self.triggers
        if triggers is None:
            return None
        where = CgroupFiles(self.cgroup_fs, self.system.proc_root, self._cgroup2_root())
        cgroup_dir = None if cgroup.is_root else cgroup.path.absolute
        return triggers.watch_cgroup(where, cgroup_dir, resource, kind, stall_us, window_us)

    def watch_threshold(
        self, cgroups: Sequence[CgroupContext], resource: str, kind: str, percent: float
    ) -> None:
        """:meth:`watch_pressure` for a detector that compares pressure with
        ``percent`` (the trigger: oomd.cgroup.triggers.threshold_trigger)."""
        if self.triggers is None:
            return
        stall, window = threshold_trigger(percent)
        for cgroup in cgroups:
            self.watch_pressure(cgroup, resource, kind, stall, window)
            if not cgroup.is_root and not self._cgroup2_root():
                return  # a fake tree: no cgroup gets a trigger (logged once)

    def _cgroup2_root(self) -> bool:
        known = self._root_is_cgroup2
        if known is None:
            known = self._root_is_cgroup2 = self._root_fd >= 0 and is_cgroup2(self._root_fd)
        return known

    def refresh(self) -> None:
        """Start a new tick: archive history, forget cgroups nobody used last tick."""
        previous = self.tick
        self.tick += 1
        self.system.refresh(self.clock())
        self._resolved = {}
        # One stat per tick: a cgroup filesystem unmounted, remounted or replaced at
        # the same path is picked up here.
        root_fd = self._root.check()
        if root_fd != self._root_fd:
            self._root_is_cgroup2 = None
        self._root_fd = root_fd
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

    def _adopt_key(
        self, key: str, fs_root: str, parts: tuple[str, ...], inode: int
    ) -> CgroupContext:
        """:meth:`_adopt` for ``CgroupPath(fs_root, parts)``, whose absolute path is
        ``key``: a cgroup seen before costs one dict lookup, no new path object."""
        cgroup = self.cgroups.get(key)
        if cgroup is None or cgroup.inode != inode:
            return self._adopt(CgroupPath(fs_root, parts), inode)
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
        """Contexts of a cgroup's child cgroups (as listed this tick), by name. The
        listing is adopted as it is read (no (name, inode) list is kept for 10,000
        children) and memoized for the tick."""
        return list(cgroup._child_contexts())

    def _list_children(self, cgroup: CgroupContext) -> list[CgroupContext]:
        path = cgroup.path
        base = path.absolute + "/" if path.absolute != "/" else "/"
        parts = path.parts
        fs_root = path.fs
        adopt = self._adopt_key
        contexts = [
            adopt(base + name, fs_root, (*parts, name), inode)
            for name, inode in cgroup._child_entries()
        ]
        contexts.sort(key=_BY_NAME)
        return contexts

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
            return list(cached)  # a copy: a plugin may sort or pop what it gets
        found: dict[str, tuple[str, tuple[str, ...], int, str]] = {}
        for pattern in patterns:
            for absolute, parts, inode in pattern.resolve_raw():
                if absolute not in found:
                    found[absolute] = (absolute, parts, inode, pattern.fs)
        if base is not None:
            for pattern in ruleset_patterns:
                under = pattern.under(base)
                for absolute, parts, inode in under.resolve_raw():
                    if absolute not in found:
                        found[absolute] = (absolute, parts, inode, under.fs)
        adopt = self._adopt_key
        result = [
            adopt(absolute, fs_root, parts, inode)
            for absolute, parts, inode, fs_root in sorted(found.values(), key=_BY_PARTS)
        ]
        self._resolved[key] = result
        return list(result)


_BY_PARTS = itemgetter(1)


def _BY_NAME(cgroup: CgroupContext) -> str:
    return cgroup.path.parts[-1]


class _RootDir:
    """An ``O_PATH`` descriptor of the cgroup filesystem's root, which every cgroup
    file is opened relative to; re-opened when the path names another directory
    (remount, a test tree replaced), closed with its context."""

    __slots__ = ("fd", "ident", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1
        self.ident: tuple[int, int] | None = None

    def check(self) -> int:
        """The descriptor to use this tick (-1: read by absolute path)."""
        try:
            st = os.stat(self.path)
        except OSError:
            self.close()
            return -1
        ident = (st.st_dev, st.st_ino)
        if self.fd >= 0 and ident == self.ident:
            return self.fd
        self.close()
        try:
            fd = os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            st = os.fstat(fd)
        except OSError:
            return -1
        self.fd, self.ident = fd, (st.st_dev, st.st_ino)
        return fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.ident = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


def fmt_mb(value: int) -> int:
    """Bytes to whole MiB as upstream logs them (``x / 1024 / 1024``, truncating
    toward zero)."""
    return value >> 20 if value >= 0 else -((-value) >> 20)


__all__ = [
    "INT64_MAX",
    "ActionContext",
    "CgroupContext",
    "ContextParams",
    "KillPreference",
    "OomdContext",
    "PauseTarget",
]
