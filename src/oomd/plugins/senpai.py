"""``senpai``: keeps a light memory pressure on cgroups so that ``memory.current``
approximates their working set (upstream ``plugins/Senpai.cpp``; reference section 8).

An action that always returns CONTINUE. Every run resolves ``cgroup`` and walks the
cgroups in ascending inode order, keeping state per inode: a cgroup seen for the
first time is initialised (and ticked from the next run on), one no longer resolved
is forgotten, and so is one whose tick cannot read or write what it needs (it is then
initialised again on the next run).

Two modes:

* default (limit tracking): the limit starts at ``memory.current``; each run adds the
  cgroup's ``memory.pressure`` *some* stall time (``total``, microseconds) since the
  previous run. Once the accumulated stall reaches ``pressure_ms`` the limit backs
  off (grows) by a factor quadratic in the overshoot, capped at ``max_backoff``;
  after ``interval`` quiet runs it probes (shrinks) by a factor quadratic in the
  undershoot, capped at ``max_probe``. The limit stays between ``limit_min_bytes``
  above the unreclaimable memory (and ``memory.min``) and ``limit_max_bytes`` above
  ``memory.current`` (and MemTotal, ``memory.max``, and ``memory.high`` when
  ``memory.high.tmp`` is used), rounded down to 4 KiB, and is written to
  ``memory.high.tmp`` (``<bytes> 20000000``) where the kernel has it, else
  ``memory.high``.
* ``immediate_backoff``: every ``interval`` runs, if the memory and io *some*
  pressures (avg10 and avg60) are below ``pressure_pct``/``io_pressure_pct`` (and,
  with ``swap_validation``, the swap check passes), reclaims ``max_probe`` of the
  distance from ``memory.current`` down to the minimum above: a write to
  ``memory.reclaim`` where the kernel has it, else ``memory.high`` set to
  ``current - size`` and reset to max at once (through a thread interrupted after
  ``memory_high_timeout_ms`` if that is set). With ``modulate_swappiness`` the host
  swappiness is scaled down by swap-out rate and swap use during the reclaim and
  restored after it.

The control law is plain functions of state, readings and args
(:func:`account_pressure`, :func:`apply_adjustment`, :func:`limit_min_bytes`,
:func:`limit_max_bytes`, :func:`reclaim_size`, :func:`swappiness_factor`, ...), so
tests drive it tick by tick without a filesystem; the plugin class only reads the
cgroup context and writes control files.

Kept from upstream on purpose: with ``swap_validation`` the swap check *passes* when
the effective swap use is at or above ``swap_threshold`` (upstream's code; its comment
says the opposite), and a failed ``memory.reclaim`` write (the kernel answers EAGAIN
when it reclaimed less than asked) forgets the cgroup until the next run.

Deliberate differences (docs/compatibility.md): a ``memory.pressure`` without
``total=`` or a ``memory.stat`` without ``active_file``/``inactive_file`` is logged and
the cgroup forgotten (upstream throws and the daemon dies); ``pressure_ms`` must be
positive (0 crashes upstream with a division by zero); arithmetic that is undefined in
C++ (a NaN or out-of-range factor) keeps or saturates the limit; an unreadable
swappiness is never "restored" as 0; swap-out rate averages use the time between
ticks and the real page size; swappiness is written under the daemon's proc root
(``/proc/sys/vm/swappiness``), so tests write a scratch file.
"""

from __future__ import annotations

import math
import os
import signal
import threading
from collections.abc import Callable

from oomd.cgroup import fs
from oomd.cnum import INT64_MAX, c_max, c_min, fdiv, to_int64
from oomd.plugin import (
    Action,
    ArgError,
    CgroupContext,
    CgroupPattern,
    OomdContext,
    PluginInitError,
    PluginRet,
    Pressure,
    arg,
    log,
    parse_bool,
    parse_cgroups,
    parse_float,
    parse_int64,
    parse_milliseconds,
    to_float32,
)
from oomd.typeshim import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from typing import Any

#: The lifetime of a ``memory.high.tmp`` limit: 20 s, written in microseconds.
HIGH_TMP_DURATION_US = 20_000_000
#: A page-aligned limit: ``limit & PAGE_MASK``.
PAGE_MASK = ~0xFFF
_GIB = float(1 << 30)


# --- arguments and state ------------------------------------------------------------------


class SenpaiParams(NamedTuple):
    """The args the control law uses, with upstream's defaults."""

    limit_min_bytes: int = 100 << 20
    limit_max_bytes: int = 10 << 30
    interval: int = 6
    pressure_ms: int = 10
    pressure_pct: float = 0.1
    io_pressure_pct: float = 0.1
    max_probe: float = 0.01
    max_backoff: float = 1.0
    coeff_probe: float = 10.0
    coeff_backoff: float = 20.0
    swap_threshold: float = 0.8
    swapout_bps_threshold: int = 1 << 20


class CgroupState:
    """What senpai remembers of one cgroup (upstream ``CgroupState``)."""

    __slots__ = ("cumulative", "last_total", "limit", "probe_bytes", "probe_count", "ticks")

    def __init__(
        self,
        limit: int,
        last_total: int,
        ticks: int,
        cumulative: int = 0,
        probe_bytes: int = 0,
        probe_count: int = 0,
    ) -> None:
        #: The limit last written (default mode only).
        self.limit = limit
        #: The last ``memory.pressure`` some ``total`` seen, microseconds.
        self.last_total = last_total
        #: Runs left before the next probe (default) or reclaim (immediate_backoff).
        self.ticks = ticks
        #: Stall time accumulated since the last adjustment, microseconds.
        self.cumulative = cumulative
        self.probe_bytes = probe_bytes
        self.probe_count = probe_count


class Host(NamedTuple):
    """Host-wide readings of this tick."""

    mem_total: int
    swap_total: int = 0
    swappiness: int = 0


class StatLike(Protocol):
    def get(self, key: str) -> int | None: ...


class Readings(Protocol):
    """What the control law reads of one cgroup (``CgroupContext`` provides it; tests
    give a plain object). ``None``: unreadable."""

    def current_usage(self) -> int | None: ...
    def memory_min(self) -> int | None: ...
    def memory_high(self) -> int | None: ...
    def memory_max(self) -> int | None: ...
    def memory_stat(self) -> StatLike | None: ...
    def effective_swap_free(self) -> int | None: ...


class InvalidCgroup(Exception):
    """A cgroup file upstream cannot parse and throws on (killing the daemon): here
    the message is logged and the cgroup forgotten."""


# --- the control law: default (limit tracking) mode ----------------------------------------


class Adjustment(NamedTuple):
    """A limit change due this run."""

    backoff: bool
    factor: float
    #: The limit before the change (the one read back this run).
    old_limit: int
    total: int
    delta: int
    #: Stall time accumulated up to this run (before the adjustment resets it).
    cumulative: int


def backoff_factor(cumulative_us: int, params: SenpaiParams) -> float:
    """How much to grow the limit: ``min((error/coeff_backoff)^2 * max_backoff,
    max_backoff)`` where ``error`` is the stall time in whole multiples of
    ``pressure_ms`` (integer division, as upstream's chrono division)."""
    error = cumulative_us // (params.pressure_ms * 1000)
    factor = fdiv(float(error), params.coeff_backoff)
    factor *= factor
    result: float = c_min(factor * params.max_backoff, params.max_backoff)
    return result


def probe_factor(cumulative_us: int, params: SenpaiParams) -> float:
    """How much to shrink the limit (a negative factor): ``-min((error/coeff_probe)^2 *
    max_probe, max_probe)`` where ``error`` is ``pressure_ms`` in whole multiples of
    the stall time (at least 1 us)."""
    error = (params.pressure_ms * 1000) // max(cumulative_us, 1)
    factor = fdiv(float(error), params.coeff_probe)
    factor *= factor
    result: float = c_min(factor * params.max_probe, params.max_probe)
    return -result


def account_pressure(state: CgroupState, total: int, params: SenpaiParams) -> Adjustment | None:
    """Add the stall time since the last run; returns the adjustment due now (a
    back-off once ``pressure_ms`` is reached, a probe after ``interval`` quiet runs),
    or None while counting down (``ticks`` decremented)."""
    delta = total - state.last_total
    state.last_total = total
    state.cumulative += delta
    cumulative = state.cumulative
    if cumulative >= params.pressure_ms * 1000:
        factor = backoff_factor(cumulative, params)
        return Adjustment(True, factor, state.limit, total, delta, cumulative)
    if state.ticks:
        state.ticks -= 1
        return None
    return Adjustment(
        False, probe_factor(cumulative, params), state.limit, total, delta, cumulative
    )


def adjusted_limit(limit: int, factor: float, lo: int, hi: int) -> int:
    """``limit + limit*factor`` (in double, truncated), clamped to ``[lo, hi]`` (``lo``
    wins), rounded down to a multiple of 4096."""
    raw = float(limit) + float(limit) * factor
    new = to_int64(raw, nan=limit)
    clamped: int = c_max(lo, c_min(hi, new))
    return clamped & PAGE_MASK


def apply_adjustment(
    state: CgroupState, adj: Adjustment, lo: int, hi: int, params: SenpaiParams
) -> int:
    """Upstream's ``adjust()``: the new limit (returned, to be written), ``ticks``
    back to ``interval``, the accumulated stall time reset; a probe that lowered the
    limit is counted for the aggregate log."""
    state.limit = adjusted_limit(state.limit, adj.factor, lo, hi)
    state.ticks = params.interval
    state.cumulative = 0
    if not adj.backoff and adj.old_limit > state.limit:
        state.probe_count += 1
        state.probe_bytes += adj.old_limit - state.limit
    return state.limit


def backoff_log_line(name: str, adj: Adjustment, ticks: int) -> str:
    """Upstream's back-off line (``%.3f`` GiB, then the factor as ``%.3g``)."""
    return (
        f"cgroup {name} limitgb {adj.old_limit / _GIB:.3f} totalus {adj.total} "
        f"deltaus {adj.delta} cumus {adj.cumulative} ticks {ticks} adjust {adj.factor:.3g}"
    )


def reclaimable_bytes(cg: Readings, host: Host) -> int | None:
    """File cache plus the anon memory swap could take: ``active_file +
    inactive_file``, plus ``min(effective swap free, active_anon + inactive_anon)``
    when the host has swap and swappiness > 0 and the cgroup has swap left."""
    stat = cg.memory_stat()
    if stat is None:
        return None
    active_file = stat.get("active_file")
    inactive_file = stat.get("inactive_file")
    if active_file is None or inactive_file is None:
        raise InvalidCgroup("Invalid memory.stat cgroup file (no active_file/inactive_file)")
    swappable = 0
    if host.swap_total > 0 and host.swappiness > 0:
        swap_free = cg.effective_swap_free()
        if swap_free is None:
            return None
        if swap_free > 0:
            active_anon = stat.get("active_anon")
            inactive_anon = stat.get("inactive_anon")
            if active_anon is None or inactive_anon is None:
                return None
            swappable = min(swap_free, active_anon + inactive_anon)
    return active_file + inactive_file + swappable


def limit_min_bytes(cg: Readings, host: Host, params: SenpaiParams) -> int | None:
    """``limit_min_bytes`` above the unreclaimable memory, and at least
    ``memory.min``."""
    current = cg.current_usage()
    if current is None:
        return None
    reclaimable = reclaimable_bytes(cg, host)
    if reclaimable is None:
        return None
    lo = params.limit_min_bytes + (current - reclaimable)
    memory_min = cg.memory_min()
    if memory_min is None:
        return None
    result: int = c_max(lo, memory_min)
    return result


def limit_max_bytes(
    cg: Readings, host: Host, params: SenpaiParams, uses_high_tmp: bool | None
) -> int | None:
    """The smallest of MemTotal, ``memory.current + limit_max_bytes``, ``memory.high``
    (only when writing ``memory.high.tmp``: the kernel ignores memory.high while a
    memory.high.tmp is set) and ``memory.max``."""
    current = cg.current_usage()
    if current is None:
        return None
    hi: int = c_min(host.mem_total, params.limit_max_bytes + current)
    if uses_high_tmp is None:
        return None
    if uses_high_tmp:
        high = cg.memory_high()
        if high is None:
            return None
        hi = c_min(hi, high)
    memory_max = cg.memory_max()
    if memory_max is None:
        return None
    result: int = c_min(hi, memory_max)
    return result


# --- the control law: immediate_backoff mode ------------------------------------------------


def pressure_ok(memory: Pressure, io: Pressure, params: SenpaiParams) -> bool:
    """Short and long term *some* pressures of memory and io all below target
    (compared in single precision, as upstream stores them)."""
    f = to_float32
    return (
        max(f(memory.avg10), f(memory.avg60)) < params.pressure_pct
        and max(f(io.avg10), f(io.avg60)) < params.io_pressure_pct
    )


def swap_usage_ok(util: float, params: SenpaiParams) -> bool:
    """Upstream's literal test: passes when the effective swap use is *at or above*
    ``swap_threshold`` (its comment says below)."""
    return util >= params.swap_threshold


def reclaim_size(current: int, lo: int, params: SenpaiParams) -> int:
    """``max_probe`` of the way from ``current`` down to ``lo``, whole 4 KiB pages."""
    return to_int64(float(current - lo) * params.max_probe, nan=0) & PAGE_MASK


def swappiness_factor(
    params: SenpaiParams,
    swapout_bps_60: float,
    swapout_bps_300: float,
    util: Callable[[], float | None],
) -> float | None:
    """The factor (0..1) applied to the host swappiness during a reclaim: 0 when
    ``swap_threshold`` <= 0 or the swap-out rate (the larger of the 60 s and 300 s
    averages) reaches ``swapout_bps_threshold`` or the effective swap use reaches
    ``swap_threshold``; else the smaller of ``1 - rate/swapout_bps_threshold`` and
    ``1 - use/swap_threshold``. ``util`` is read only when needed; None if it
    cannot be read."""
    if params.swap_threshold <= 0:
        return 0.0
    rate = c_max(swapout_bps_60, swapout_bps_300)
    if rate >= params.swapout_bps_threshold:
        return 0.0
    by_rate = 1.0 - fdiv(rate, float(params.swapout_bps_threshold))
    used = util()
    if used is None:
        return None
    if used >= params.swap_threshold:
        return 0.0
    by_size = 1.0 - used / params.swap_threshold
    result: float = c_min(by_rate, by_size)
    return result


class SwapoutAverages:
    """Upstream's ``swapout_bps_60``/``swapout_bps_300``: exponential moving averages
    of the swap-out rate, decayed by ``e^(-dt/60)`` and ``e^(-dt/300)`` per sample."""

    __slots__ = ("bps_60", "bps_300", "last")

    def __init__(self) -> None:
        self.bps_60 = 0.0
        self.bps_300 = 0.0
        self.last: float | None = None

    def update(self, now: float, rate: float | None) -> None:
        """Feed one tick's rate (None: ``/proc/vmstat`` or its ``pswpout`` is
        missing, which restarts the averages from 0 as upstream)."""
        if rate is None:
            self.bps_60 = self.bps_300 = 0.0
            self.last = None
            return
        if self.last is not None and now > self.last:
            dt = now - self.last
            self.bps_60 = rate + math.exp(-dt / 60.0) * (self.bps_60 - rate)
            self.bps_300 = rate + math.exp(-dt / 300.0) * (self.bps_300 - rate)
        self.last = now


# --- a write with a deadline ----------------------------------------------------------------

TIMED_OUT_MESSAGE = "Timed out waiting execution: Connection timed out"


def _no_op_handler(signum: int, frame: object) -> None:
    pass


def interrupt_thread(ident: int) -> None:
    """Send SIGUSR1 to a thread so that a blocking write in it returns (the kernel's
    memory.high write stops reclaiming when a signal is pending). Only when SIGUSR1
    has a handler: its default action would end the daemon."""
    if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN, None):
        return
    try:
        signal.pthread_kill(ident, signal.SIGUSR1)
    except ProcessLookupError:
        pass


def timed_call(
    fn: Callable[[], bool],
    timeout: float,
    interrupt: Callable[[int], None] = interrupt_thread,
    retry_every: float = 1.0,
) -> bool | None:
    """Run ``fn`` in a thread; its result, or None if it did not return within
    ``timeout`` seconds - then the thread is interrupted every ``retry_every``
    seconds until it returns (upstream's ``timed_invoke``)."""
    result: list[bool] = []

    def target() -> None:
        result.append(fn())

    thread = threading.Thread(target=target, name="senpai-write", daemon=True)
    thread.start()
    thread.join(timeout)
    if not thread.is_alive():
        return bool(result and result[0])
    while thread.is_alive():
        if thread.ident is not None:
            interrupt(thread.ident)
        thread.join(retry_every)
    return None


# --- the plugin ---------------------------------------------------------------------------


#: The args' defaults are the control law's (one place for upstream's values).
_DEFAULTS = SenpaiParams()


#: Tracked cgroups shown by ``explain`` at most.
MAX_SHOWN = 20


class Senpai(Action):
    name = "senpai"
    needs_controllers = frozenset({"memory"})
    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, required=True)
    limit_min_bytes: int = arg(parse_int64, default=_DEFAULTS.limit_min_bytes)
    limit_max_bytes: int = arg(parse_int64, default=_DEFAULTS.limit_max_bytes)
    interval: int = arg(parse_int64, default=_DEFAULTS.interval)
    pressure_ms: int = arg(parse_milliseconds, default=_DEFAULTS.pressure_ms)
    pressure_pct: float = arg(parse_float, default=_DEFAULTS.pressure_pct)
    io_pressure_pct: float = arg(parse_float, default=_DEFAULTS.io_pressure_pct)
    max_probe: float = arg(parse_float, default=_DEFAULTS.max_probe)
    max_backoff: float = arg(parse_float, default=_DEFAULTS.max_backoff)
    coeff_probe: float = arg(parse_float, default=_DEFAULTS.coeff_probe)
    coeff_backoff: float = arg(parse_float, default=_DEFAULTS.coeff_backoff)
    immediate_backoff: bool = arg(parse_bool, default=False)
    memory_high_timeout_ms: int = arg(parse_milliseconds, default=0)
    swap_threshold: float = arg(parse_float, default=_DEFAULTS.swap_threshold)
    swapout_bps_threshold: int = arg(parse_int64, default=_DEFAULTS.swapout_bps_threshold)
    swap_validation: bool = arg(parse_bool, default=False)
    modulate_swappiness: bool = arg(parse_bool, default=False)
    log_interval: int = arg(parse_int64, default=60)

    def setup(self) -> None:
        if self.pressure_ms <= 0:
            raise ArgError("pressure_ms", "must be positive (upstream divides by it)")
        try:
            meminfo = self.env.system.read_meminfo()
        except OSError:
            raise PluginInitError("Cannot read host MemTotal") from None
        self.host_mem_total = meminfo.get("MemTotal", 0)
        self.params = SenpaiParams(**{name: getattr(self, name) for name in SenpaiParams._fields})
        #: State per cgroup inode.
        self.tracked: dict[int, CgroupState] = {}
        #: Decided once, from the first cgroup that tells (upstream: per instance).
        self.has_memory_high_tmp: bool | None = None
        self.has_memory_reclaim: bool | None = None
        self.log_ticks = 0
        self.swapout = SwapoutAverages()
        self._host: tuple[int, Host] | None = None
        self._warned: set[int] = set()
        #: Interrupts a memory.high write that outlives ``memory_high_timeout_ms``.
        self.interrupt: Callable[[int], None] = interrupt_thread
        if (
            self.immediate_backoff
            and self.memory_high_timeout_ms > 0
            and signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None)
        ):
            try:
                signal.signal(signal.SIGUSR1, _no_op_handler)
            except ValueError:
                log.warn("senpai: cannot install a SIGUSR1 handler; slow writes wait")

    # -- per tick ---------------------------------------------------------------------

    def prerun(self, ctx: OomdContext) -> None:
        """Sample the swap-out rate every tick (upstream's system context does)."""
        if not (self.immediate_backoff and self.modulate_swappiness):
            return
        system = ctx.system
        stat = system.vmstat()
        if stat is None or stat.get("pswpout") is None:
            self.swapout.update(ctx.now(), None)
        else:
            self.swapout.update(ctx.now(), system.swapout_bps())

    def host(self, ctx: OomdContext) -> Host:
        if self._host is None or self._host[0] != ctx.tick:
            system = ctx.system
            host = Host(self.host_mem_total, system.swaps()[0], system.swappiness() or 0)
            self._host = (ctx.tick, host)
        return self._host[1]

    def run(self, ctx: OomdContext) -> PluginRet:
        self.log_ticks += 1
        aggregate = self.log_ticks >= self.log_interval
        if aggregate:
            self.log_ticks = 0
        tracked: dict[int, CgroupState] = {}
        warned: set[int] = set()
        for cg in sorted(ctx.resolve(self.cgroup), key=lambda c: c.inode):
            inode = cg.inode
            if inode in tracked:
                continue
            old = self.tracked.get(inode)
            try:
                if old is None:
                    fresh = self.initialize(cg)
                    if fresh is not None:
                        tracked[inode] = fresh
                    continue
                state = (
                    self.tick_immediate(ctx, cg, old)
                    if self.immediate_backoff
                    else self.tick_limit(ctx, cg, old)
                )
            except InvalidCgroup as e:
                warned.add(inode)
                if inode not in self._warned:
                    log.info(f"cgroup {cg.path.absolute}: {e}; not tracking it")
                continue
            if state is None:
                continue
            if aggregate:
                log.info(
                    f"cgroup {cg.path.relative} {state.probe_count} probe attempts "
                    f"({state.probe_bytes / _GIB:.3f} gb)"
                )
                state.probe_count = 0
                state.probe_bytes = 0
            tracked[inode] = state
        self.tracked = tracked
        self._warned = warned
        return PluginRet.CONTINUE

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        """The cgroups it tracks, read-only: the memory.high limit it last wrote
        (default mode), the runs left before its next probe or reclaim, and the stall
        accumulated since its last adjustment."""
        by_inode = {cg.inode: cg for cg in ctx.resolve(self.cgroup)}
        tracked = []
        for inode, state in sorted(self.tracked.items()):
            cg = by_inode.get(inode)
            if cg is None:
                continue
            tracked.append(
                {
                    "cgroup": cg.path.relative or "/",
                    "limit": None if self.immediate_backoff else state.limit,
                    "runs_to_next_step": state.ticks,
                    "stall_us_since_adjustment": state.cumulative,
                }
            )
        return {
            "description": "memory.reclaim each interval (immediate_backoff)"
            if self.immediate_backoff
            else "adjusts memory.high to keep pressure near pressure_ms",
            "watched": len(by_inode),
            "tracked": tracked[:MAX_SHOWN],
            "tracked_count": len(tracked),
        }

    def initialize(self, cg: CgroupContext) -> CgroupState | None:
        """A new state, or None when the cgroup cannot be tracked this run."""
        start_limit = 0
        if not self.immediate_backoff:
            current = cg.current_usage()
            if current is None or not self.write_memhigh(cg, current):
                return None
            start_limit = current
        total = self.pressure_total(cg)
        if total is None:
            return None
        return CgroupState(start_limit, total, self.interval)

    def tick_limit(
        self, ctx: OomdContext, cg: CgroupContext, state: CgroupState
    ) -> CgroupState | None:
        limit = self.read_memhigh(cg)
        if limit is None:
            return None
        if limit != state.limit:
            log.info(
                f"cgroup {cg.path.absolute} memory.high {limit} does not match recorded "
                f"state {state.limit}. Resetting cgroup"
            )
            return self.initialize(cg)
        total = self.pressure_total(cg)
        if total is None:
            return None
        adj = account_pressure(state, total, self.params)
        if adj is None:
            return state
        host = self.host(ctx)
        lo = limit_min_bytes(cg, host, self.params)
        if lo is None:
            return None
        hi = limit_max_bytes(cg, host, self.params, self.uses_memory_high_tmp(cg))
        if hi is None:
            return None
        new_limit = apply_adjustment(state, adj, lo, hi, self.params)
        if not self.write_memhigh(cg, new_limit):
            return None
        if adj.backoff:
            log.info(backoff_log_line(cg.path.absolute, adj, state.ticks))
        return state

    def tick_immediate(
        self, ctx: OomdContext, cg: CgroupContext, state: CgroupState
    ) -> CgroupState | None:
        if state.ticks:
            state.ticks -= 1
            return state
        memory = cg.mem_pressure_some()
        if memory is None:
            return None
        io = cg.io_pressure_some()
        if io is None:
            return None
        ok = pressure_ok(memory, io, self.params)
        if self.swap_validation:
            swap = self.swap_ok(ctx, cg)
            if swap is None:
                return None
            ok = ok and swap
        if not ok:
            return state
        host = self.host(ctx)
        lo = limit_min_bytes(cg, host, self.params)
        if lo is None:
            return None
        current = cg.current_usage()
        if current is None:
            return None
        if current <= lo:
            return state
        original: int | None = None
        if self.modulate_swappiness:
            factor = swappiness_factor(
                self.params, self.swapout.bps_60, self.swapout.bps_300, cg.effective_swap_util_pct
            )
            if factor is None:
                return None
            original = ctx.system.swappiness()
            if original is not None:
                self.set_swappiness(ctx, to_int64(original * factor, nan=0))
        size = reclaim_size(current, lo, self.params)
        try:
            if not self.reclaim(cg, size):
                return None
        finally:
            if original is not None:
                self.set_swappiness(ctx, original)
        state.probe_count += 1
        state.probe_bytes += size
        state.ticks = self.interval
        return state

    def swap_ok(self, ctx: OomdContext, cg: CgroupContext) -> bool | None:
        host = self.host(ctx)
        if host.swap_total == 0 or host.swappiness == 0:
            return True
        swap_max = cg.effective_swap_max()
        if swap_max is None:
            return None
        if swap_max == 0:
            return True
        util = cg.effective_swap_util_pct()
        if util is None:
            return None
        return swap_usage_ok(util, self.params)

    # -- reading and writing the cgroup ----------------------------------------------

    def pressure_total(self, cg: CgroupContext) -> int | None:
        """The cgroup's ``memory.pressure`` some ``total`` (read from the cgroup
        directory, the root's too, as upstream)."""
        if cg.is_root:
            data = fs.read_bytes(cg.path.absolute + "/memory.pressure")
            pressure = None if data is None else fs.parse_pressure(data, full=False)
        else:
            pressure = cg.pressure("memory", full=False)
        if pressure is None:
            return None
        if pressure.total is None:
            raise InvalidCgroup("Senpai enabled but no total pressure info in memory.pressure")
        return pressure.total

    def uses_memory_high_tmp(self, cg: CgroupContext) -> bool | None:
        """memory.high.tmp readable: use it; else memory.high readable: use that;
        neither: undecided (this cgroup is gone)."""
        if self.has_memory_high_tmp is None:
            if cg.memory_high_tmp() is not None:
                self.has_memory_high_tmp = True
            elif cg.memory_high() is not None:
                self.has_memory_high_tmp = False
        return self.has_memory_high_tmp

    def memory_reclaim_supported(self, cg: CgroupContext) -> bool | None:
        if self.has_memory_reclaim is None:
            controllers = cg.controllers()
            if controllers is not None and "memory" in controllers:
                self.has_memory_reclaim = os.path.exists(cg.path.absolute + "/memory.reclaim")
        return self.has_memory_reclaim

    def read_memhigh(self, cg: CgroupContext) -> int | None:
        tmp = self.uses_memory_high_tmp(cg)
        if tmp is None:
            return None
        return cg.memory_high_tmp() if tmp else cg.memory_high()

    def _dry(self, what: str) -> bool:
        """Under ``--dry-run`` senpai computes as usual and writes nothing (it changed
        memory.high and /proc/sys/vm/swappiness): log that once per plugin."""
        if not self.env.dry_run:
            return False
        if not getattr(self, "_dry_logged", False):
            self._dry_logged = True
            log.info(f"senpai: dry run, not writing {what} (nor anything else)")
        return True

    def write(self, cg: CgroupContext, filename: str, text: str) -> bool:
        if cg.dead:
            return False
        if self._dry(f"{text} to {cg.path.relative}/{filename}"):
            return True
        try:
            fs.write_control(cg.path.absolute + "/" + filename, text)
        except OSError:
            return False
        return True

    def write_memhigh(self, cg: CgroupContext, value: int) -> bool:
        tmp = self.uses_memory_high_tmp(cg)
        if tmp is None:
            return False
        if tmp:
            return self.write(cg, "memory.high.tmp", f"{value} {HIGH_TMP_DURATION_US}")
        return self.write(cg, "memory.high", str(value))

    def reset_memhigh(self, cg: CgroupContext) -> bool:
        tmp = self.uses_memory_high_tmp(cg)
        if tmp is None:
            return False
        if tmp:
            return self.write(cg, "memory.high.tmp", f"{INT64_MAX} 0")
        return self.write(cg, "memory.high", str(INT64_MAX))

    def write_memhigh_timeout(self, cg: CgroupContext, value: int) -> bool:
        result = timed_call(
            lambda: self.write_memhigh(cg, value),
            self.memory_high_timeout_ms / 1000.0,
            self.interrupt,
        )
        if result is None:
            # Most likely the write timed out: assume the cgroup is still valid.
            log.info(f"Failed to write memory limit for {cg.path.relative}: {TIMED_OUT_MESSAGE}")
            return True
        return result

    def reclaim(self, cg: CgroupContext, size: int) -> bool:
        """``memory.reclaim`` where the kernel has it; else poke memory.high down to
        ``current - size`` and straight back to max."""
        if self.memory_reclaim_supported(cg):
            return self.write(cg, "memory.reclaim", str(size))
        current = cg.current_usage()
        if current is None:
            return False
        limit = current - size
        if self.memory_high_timeout_ms > 0:
            if not self.write_memhigh_timeout(cg, limit):
                return False
        elif not self.write_memhigh(cg, limit):
            return False
        return self.reset_memhigh(cg)

    def swappiness_path(self, ctx: OomdContext) -> str:
        return ctx.system.proc_root + "/sys/vm/swappiness"

    def set_swappiness(self, ctx: OomdContext, value: int) -> None:
        path = self.swappiness_path(ctx)
        if self._dry(f"{value} to {path}"):
            return
        try:
            fs.write_control(path, str(value))
        except OSError as e:
            log.info(f"Failed to set swappiness to {value} in {path}: {e.strerror}")
