"""senpai (upstream plugins/Senpai.cpp; reference section 8, with 6.5 for the
control-file write format). Upstream has no unit test for senpai, so every behaviour
of the reference is pinned here.

The control law is tested as plain functions over scripted readings (no filesystem);
the plugin end to end on a fake tree, tick by tick, where the test plays the kernel
(:class:`Kernfs`): after each tick it checks the exact bytes upstream's write leaves in
a control file (one write at offset 0, no truncation, no newline, so the tail of the
old content stays in a regular file) and then rewrites the file as the kernel would
show it, which is what the next tick reads back.
"""

from __future__ import annotations

import math
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from oomd.cgroup.fs import Pressure
from oomd.cnum import INT64_MAX
from oomd.config.errors import ConfigError
from oomd.engine.plugin import PluginRet
from oomd.plugins.senpai import (
    Adjustment,
    CgroupState,
    Host,
    InvalidCgroup,
    Senpai,
    SenpaiParams,
    SwapoutAverages,
    account_pressure,
    adjusted_limit,
    apply_adjustment,
    backoff_factor,
    backoff_log_line,
    interrupt_thread,
    limit_max_bytes,
    limit_min_bytes,
    pressure_ok,
    probe_factor,
    reclaim_size,
    reclaimable_bytes,
    swap_usage_ok,
    swappiness_factor,
    timed_call,
)
from tests.support.harness import Harness

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
APP = "workload.slice/app"


# --- a cgroup without a filesystem ----------------------------------------------------------


@dataclass
class FakeCgroup:
    current: int | None = 2 * GiB
    min: int | None = 0
    high: int | None = INT64_MAX
    max: int | None = INT64_MAX
    stat: dict[str, int] | None = field(
        default_factory=lambda: {
            "active_file": 512 * MiB,
            "inactive_file": 512 * MiB,
            "active_anon": 256 * MiB,
            "inactive_anon": 256 * MiB,
        }
    )
    swap_free: int | None = 0

    def current_usage(self) -> int | None:
        return self.current

    def memory_min(self) -> int | None:
        return self.min

    def memory_high(self) -> int | None:
        return self.high

    def memory_max(self) -> int | None:
        return self.max

    def memory_stat(self) -> dict[str, int] | None:
        return self.stat

    def effective_swap_free(self) -> int | None:
        return self.swap_free


NO_SWAP = Host(mem_total=64 * GiB)
SWAP = Host(mem_total=64 * GiB, swap_total=4 * GiB, swappiness=60)


# --- the control law: default mode (reference 8.4) ------------------------------------------


def test_args_defaults_are_upstreams() -> None:
    """Senpai.h member initialisers."""
    p = SenpaiParams()
    assert (p.limit_min_bytes, p.limit_max_bytes) == (104857600, 10737418240)
    assert (p.interval, p.pressure_ms, p.pressure_pct, p.io_pressure_pct) == (6, 10, 0.1, 0.1)
    assert (p.max_probe, p.max_backoff, p.coeff_probe, p.coeff_backoff) == (0.01, 1.0, 10, 20)
    assert (p.swap_threshold, p.swapout_bps_threshold) == (0.8, 1048576)


@pytest.mark.parametrize(
    ("cumulative_us", "factor"),
    [
        (10_000, 0.0025),  # error 1: (1/20)^2
        (19_999, 0.0025),  # error is a whole multiple of pressure_ms (chrono division)
        (50_000, 0.0625),  # error 5: (5/20)^2
        (200_000, 1.0),  # error 20 reaches max_backoff
        (400_000, 1.0),  # capped at max_backoff
    ],
)
def test_backoff_factor_is_quadratic_in_the_overshoot(cumulative_us: int, factor: float) -> None:
    assert backoff_factor(cumulative_us, SenpaiParams()) == pytest.approx(factor, rel=1e-15)


def test_backoff_factor_scales_with_max_backoff() -> None:
    params = SenpaiParams(max_backoff=0.5)
    assert backoff_factor(50_000, params) == pytest.approx(0.03125)
    assert backoff_factor(400_000, params) == 0.5


@pytest.mark.parametrize(
    ("cumulative_us", "factor"),
    [
        (0, -0.01),  # no stall at all: stall counted as 1 us, capped at max_probe
        (1_000, -0.01),  # error 10: (10/10)^2 * 0.01
        (2_000, -0.0025),  # error 5
        (3_000, -0.0009),  # error 10000 // 3000 = 3
        (9_999, -0.0001),  # error 1
        (-5_000, -0.01),  # a decreasing total counts as 1 us
    ],
)
def test_probe_factor_is_quadratic_in_the_undershoot(cumulative_us: int, factor: float) -> None:
    assert probe_factor(cumulative_us, SenpaiParams()) == pytest.approx(factor, rel=1e-12)


def test_probe_counts_a_stall_below_one_millisecond_in_microseconds() -> None:
    """error = 10 ms // max(stall, 1 us): 500 us is error 20, not 10."""
    params = SenpaiParams(coeff_probe=10_000, max_probe=1.0)
    assert probe_factor(500, params) == pytest.approx(-((20 / 10_000) ** 2))
    assert probe_factor(1, params) == pytest.approx(-1.0)  # (10000/10000)^2


def test_pressure_is_accounted_then_probe_after_interval_quiet_runs() -> None:
    params = SenpaiParams(interval=2)
    state = CgroupState(limit=2 * GiB, last_total=1_000_000, ticks=2)
    assert account_pressure(state, 1_000_400, params) is None
    assert (state.ticks, state.cumulative, state.last_total) == (1, 400, 1_000_400)
    assert account_pressure(state, 1_000_400, params) is None
    assert state.ticks == 0
    adj = account_pressure(state, 1_000_900, params)
    assert adj is not None and not adj.backoff
    assert (adj.total, adj.delta, adj.cumulative, adj.old_limit) == (1_000_900, 500, 900, 2 * GiB)
    assert adj.factor == pytest.approx(-0.01)  # 10000 // 900 = 11 -> capped


def test_stall_reaching_pressure_ms_backs_off_even_while_counting_down() -> None:
    state = CgroupState(limit=GiB, last_total=0, ticks=6)
    adj = account_pressure(state, 10_000, SenpaiParams())
    assert adj is not None and adj.backoff and adj.factor == pytest.approx(0.0025)
    assert state.ticks == 6  # the countdown is reset by the adjustment, not here


def test_control_law_over_a_scripted_pressure_sequence() -> None:
    """interval 2; bounds [1 GiB + 100 MiB, 12 GiB]: three quiet runs then a 1% probe,
    a 3 ms stall then a 0.09% probe, then a 50 ms stall backs off by 6.25%."""
    params = SenpaiParams(interval=2)
    state = CgroupState(limit=2 * GiB, last_total=1_000_000, ticks=2)
    lo, hi = 1178599424, 12 * GiB
    script = [
        (1_000_000, None),
        (1_000_000, None),
        (1_000_000, 2126008320),  # trunc(2 GiB * 0.99) = 2126008811, page aligned
        (1_003_000, None),
        (1_003_000, None),
        (1_003_000, 2124091392),  # trunc(2126008320 * 0.9991) = 2124094912, aligned
        (1_053_000, 2256846848),  # trunc(2124091392 * 1.0625) = 2256847104, aligned
        (1_053_000, None),
    ]
    limits = []
    for total, expected in script:
        adj = account_pressure(state, total, params)
        limits.append(None if adj is None else apply_adjustment(state, adj, lo, hi, params))
        assert limits[-1] == expected
    assert (state.probe_count, state.probe_bytes) == (2, 2147483648 - 2124091392)
    assert state.ticks == 1 and state.cumulative == 0


def test_adjustment_resets_ticks_and_stall_and_counts_only_lowering_probes() -> None:
    params = SenpaiParams(interval=6)
    state = CgroupState(limit=GiB, last_total=0, ticks=0, cumulative=123)
    probe = Adjustment(False, -0.01, GiB, 0, 0, 123)
    # The lower bound wins: the probe cannot lower the limit, so it is not counted.
    assert apply_adjustment(state, probe, GiB + 4096, 2 * GiB, params) == GiB + 4096
    assert (state.ticks, state.cumulative, state.probe_count) == (6, 0, 0)
    backoff = Adjustment(True, 0.5, state.limit, 0, 0, 0)
    apply_adjustment(state, backoff, 0, 8 * GiB, params)
    assert state.probe_count == 0


@pytest.mark.parametrize(
    ("limit", "factor", "lo", "hi", "expected"),
    [
        (GiB, 0.5, 0, 10 * GiB, GiB + GiB // 2),
        (GiB, 1.0, 0, GiB + 10_000, (GiB + 10_000) & ~0xFFF),  # hi, page aligned
        (GiB, -0.5, GiB - 4097, 10 * GiB, GiB - 8192),  # lo, then aligned down
        (GiB, 0.5, 3 * GiB, 2 * GiB, 3 * GiB),  # lo wins over hi (std::max outermost)
        (1000, 0.0, 0, GiB, 0),  # aligned down
        (GiB, math.nan, 0, 10 * GiB, GiB),  # NaN keeps the limit (UB upstream)
        (GiB, math.inf, 0, 10 * GiB, 10 * GiB),  # saturates to hi
        (GiB, -math.inf, 5 * GiB, 10 * GiB, 5 * GiB),
    ],
)
def test_adjusted_limit_is_clamped_and_page_aligned(
    limit: int, factor: float, lo: int, hi: int, expected: int
) -> None:
    assert adjusted_limit(limit, factor, lo, hi) == expected


def test_zero_coefficients_do_not_crash() -> None:
    """coeff 0 divides by zero (inf, then NaN with max 0) in C++; here no exception."""
    params = SenpaiParams(coeff_backoff=0, coeff_probe=0, max_probe=0.0)
    assert backoff_factor(50_000, params) == 1.0
    assert math.isnan(probe_factor(0, params))
    assert adjusted_limit(GiB, probe_factor(0, params), 0, 2 * GiB) == GiB


def test_backoff_log_line_matches_upstream() -> None:
    adj = Adjustment(True, 0.0625, 2124091392, 1_053_000, 50_000, 50_000)
    assert backoff_log_line("/sys/fs/cgroup/a", adj, 2) == (
        "cgroup /sys/fs/cgroup/a limitgb 1.978 totalus 1053000 deltaus 50000 cumus 50000 "
        "ticks 2 adjust 0.0625"
    )
    one = Adjustment(True, 1.0, GiB, 1, 1, 1)
    assert backoff_log_line("a", one, 6).endswith(
        "limitgb 1.000 totalus 1 deltaus 1 cumus 1 ticks 6 adjust 1"
    )
    small = Adjustment(True, 0.000123456, GiB, 1, 1, 1)
    assert backoff_log_line("a", small, 6).endswith("adjust 0.000123")


# --- bounds (reference 8.4 adjust()) ----------------------------------------------------------


def test_reclaimable_is_file_cache_without_swap() -> None:
    assert reclaimable_bytes(FakeCgroup(), NO_SWAP) == GiB
    # With swap on the host but swappiness 0, anon does not count either.
    assert reclaimable_bytes(FakeCgroup(swap_free=GiB), Host(GiB, 4 * GiB, 0)) == GiB


def test_reclaimable_adds_swappable_anon_up_to_effective_swap_free() -> None:
    assert reclaimable_bytes(FakeCgroup(swap_free=GiB), SWAP) == GiB + 512 * MiB
    assert reclaimable_bytes(FakeCgroup(swap_free=100 * MiB), SWAP) == GiB + 100 * MiB
    assert reclaimable_bytes(FakeCgroup(swap_free=-5), SWAP) == GiB
    assert reclaimable_bytes(FakeCgroup(swap_free=None), SWAP) is None


def test_reclaimable_is_unknown_without_anon_keys_when_swap_counts() -> None:
    cg = FakeCgroup(swap_free=GiB, stat={"active_file": 1, "inactive_file": 2})
    assert reclaimable_bytes(cg, SWAP) is None
    assert reclaimable_bytes(cg, NO_SWAP) == 3


def test_memory_stat_without_file_counters_is_an_invalid_cgroup() -> None:
    """Upstream throws "Invalid memory.stat cgroup file" (and dies)."""
    with pytest.raises(InvalidCgroup, match=r"memory\.stat"):
        reclaimable_bytes(FakeCgroup(stat={"active_file": 1}), NO_SWAP)
    assert reclaimable_bytes(FakeCgroup(stat=None), NO_SWAP) is None


def test_limit_min_is_limit_min_bytes_above_unreclaimable_and_at_least_memory_min() -> None:
    params = SenpaiParams()
    assert limit_min_bytes(FakeCgroup(), NO_SWAP, params) == 100 * MiB + GiB
    assert limit_min_bytes(FakeCgroup(min=3 * GiB), NO_SWAP, params) == 3 * GiB
    assert limit_min_bytes(FakeCgroup(swap_free=GiB), SWAP, params) == 100 * MiB + 512 * MiB
    for broken in (FakeCgroup(current=None), FakeCgroup(min=None), FakeCgroup(stat=None)):
        assert limit_min_bytes(broken, NO_SWAP, params) is None


def test_limit_max_is_the_smallest_of_memtotal_current_plus_max_high_tmp_and_memory_max() -> None:
    params = SenpaiParams()
    assert limit_max_bytes(FakeCgroup(), NO_SWAP, params, False) == 12 * GiB
    assert limit_max_bytes(FakeCgroup(), Host(8 * GiB), params, False) == 8 * GiB
    assert limit_max_bytes(FakeCgroup(max=3 * GiB), NO_SWAP, params, False) == 3 * GiB
    # memory.high caps memory.high.tmp only.
    assert limit_max_bytes(FakeCgroup(high=5 * GiB), NO_SWAP, params, False) == 12 * GiB
    assert limit_max_bytes(FakeCgroup(high=5 * GiB), NO_SWAP, params, True) == 5 * GiB
    assert limit_max_bytes(FakeCgroup(high=None), NO_SWAP, params, True) is None
    assert limit_max_bytes(FakeCgroup(), NO_SWAP, params, None) is None
    assert limit_max_bytes(FakeCgroup(max=None), NO_SWAP, params, False) is None


def test_unknown_memtotal_squeezes_to_the_minimum_as_upstream() -> None:
    """MemTotal missing from /proc/meminfo reads 0: the maximum is 0 and the lower
    bound wins."""
    hi = limit_max_bytes(FakeCgroup(), Host(0), SenpaiParams(), False)
    assert hi == 0
    assert adjusted_limit(2 * GiB, 0.0, 100 * MiB + GiB, 0) == 100 * MiB + GiB


# --- the control law: immediate_backoff mode (reference 8.5) ------------------------------------


@pytest.mark.parametrize(
    ("memory", "io", "ok"),
    [
        ((0.0, 0.0), (0.0, 0.0), True),
        ((0.09, 0.05), (0.0, 0.09), True),
        ((0.1, 0.0), (0.0, 0.0), False),  # strictly below
        ((0.0, 0.2), (0.0, 0.0), False),  # avg60 counts too
        ((0.0, 0.0), (0.5, 0.0), False),  # io too
    ],
)
def test_pressure_ok_needs_memory_and_io_some_pressure_below_target(
    memory: tuple[float, float], io: tuple[float, float], ok: bool
) -> None:
    m, i = Pressure(memory[0], memory[1], 9.0), Pressure(io[0], io[1], 9.0)
    assert pressure_ok(m, i, SenpaiParams()) is ok


def test_pressure_ok_compares_single_precision_readings() -> None:
    """Upstream stores PSI averages as float: 0.1 reads as 0.10000000149, which is not
    below a target of 0.1000000001 (a double reading would be)."""
    params = SenpaiParams(pressure_pct=0.1000000001)
    assert not pressure_ok(Pressure(0.1, 0.0), Pressure(), params)


def test_swap_validation_passes_at_or_above_threshold_as_upstreams_code() -> None:
    params = SenpaiParams(swap_threshold=0.8)
    assert swap_usage_ok(0.8, params) and swap_usage_ok(0.95, params)
    assert not swap_usage_ok(0.5, params)


@pytest.mark.parametrize(
    ("current", "lo", "max_probe", "size"),
    [
        (2 * GiB, 1178599424, 0.01, 9687040),  # trunc(968884224 * 0.01) = 9688842, aligned
        (2 * GiB, 2 * GiB - 4095, 1.0, 0),  # less than a page
        (2 * GiB, GiB, 0.5, GiB // 2),
        (2 * GiB, GiB, math.nan, 0),
    ],
)
def test_reclaim_size_is_max_probe_of_the_way_down_in_whole_pages(
    current: int, lo: int, max_probe: float, size: int
) -> None:
    assert reclaim_size(current, lo, SenpaiParams(max_probe=max_probe)) == size


def test_swappiness_factor() -> None:
    params = SenpaiParams(swap_threshold=0.8, swapout_bps_threshold=MiB)

    def util(value: float | None) -> Any:
        return lambda: value

    # Limited by swap use: 1 - 0.2/0.8; by rate: 1 - 0.5 MiB/1 MiB.
    assert swappiness_factor(params, 0.0, 0.0, util(0.2)) == pytest.approx(0.75)
    assert swappiness_factor(params, MiB / 2, 0.0, util(0.2)) == pytest.approx(0.5)
    assert swappiness_factor(params, 0.0, MiB / 2, util(0.2)) == pytest.approx(0.5)
    assert swappiness_factor(params, MiB, 0.0, util(0.2)) == 0.0
    assert swappiness_factor(params, 0.0, 0.0, util(0.8)) == 0.0
    assert swappiness_factor(SenpaiParams(swap_threshold=0.0), 0.0, 0.0, util(None)) == 0.0
    # The swap use is read only when the rate is below its threshold.
    assert swappiness_factor(params, 2 * MiB, 0.0, util(None)) == 0.0
    assert swappiness_factor(params, 0.0, 0.0, util(None)) is None
    # swapout_bps_threshold 0: any rate >= 0 gives 0 (no division by zero).
    assert swappiness_factor(SenpaiParams(swapout_bps_threshold=0), 0.0, 0.0, util(0.1)) == 0.0


def test_swapout_averages_decay_per_tick_and_restart_without_vmstat() -> None:
    avg = SwapoutAverages()
    avg.update(100.0, 0.0)  # first sample: nothing to average yet
    assert (avg.bps_60, avg.bps_300) == (0.0, 0.0)
    avg.update(105.0, 6000.0)
    assert avg.bps_60 == pytest.approx(6000.0 * (1 - math.exp(-5 / 60)))
    assert avg.bps_300 == pytest.approx(6000.0 * (1 - math.exp(-5 / 300)))
    previous = avg.bps_60
    avg.update(110.0, 6000.0)
    assert avg.bps_60 == pytest.approx(6000.0 + math.exp(-5 / 60) * (previous - 6000.0))
    avg.update(115.0, None)
    assert (avg.bps_60, avg.bps_300, avg.last) == (0.0, 0.0, None)


def test_timed_call_returns_the_result_in_time() -> None:
    assert timed_call(lambda: True, 5.0) is True
    assert timed_call(lambda: False, 5.0) is False


def test_timed_call_interrupts_a_call_past_its_timeout_until_it_returns() -> None:
    released = threading.Event()
    interrupts: list[int] = []

    def stuck() -> bool:
        released.wait(10)
        return True

    def interrupt(ident: int) -> None:
        interrupts.append(ident)
        if len(interrupts) == 3:
            released.set()

    assert timed_call(stuck, 0.01, interrupt, retry_every=0.01) is None
    assert len(interrupts) == 3 and len(set(interrupts)) == 1


def test_interrupt_thread_never_signals_without_a_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGUSR1's default action would end the daemon."""
    sent: list[int] = []
    monkeypatch.setattr(signal, "pthread_kill", lambda ident, sig: sent.append(sig))
    monkeypatch.setattr(signal, "getsignal", lambda sig: signal.SIG_DFL)
    interrupt_thread(threading.get_ident())
    assert sent == []
    monkeypatch.setattr(signal, "getsignal", lambda sig: print)
    interrupt_thread(threading.get_ident())
    assert sent == [signal.SIGUSR1]


# --- the plugin on a fake tree -----------------------------------------------------------------


class Kernfs:
    """Plays the kernel for control files of the fake tree (see the module doc)."""

    def __init__(self, harness: Harness) -> None:
        self.tree = harness.tree
        self.shown: dict[tuple[str, str], bytes] = {}

    def path(self, rel: str, name: str) -> Path:
        return self.tree.path(rel) / name

    def set(self, rel: str, name: str, content: str) -> None:
        self.path(rel, name).write_text(content)
        self.shown[(rel, name)] = content.encode()

    def expect(self, rel: str, name: str, written: str, shown: str | None = None) -> None:
        """Upstream wrote exactly ``written``; the kernel then shows ``shown``."""
        before = self.shown.get((rel, name))
        if before is None:
            before = self.path(rel, name).read_bytes()
        data = written.encode()
        assert self.path(rel, name).read_bytes() == data + before[len(data) :]
        self.set(rel, name, shown if shown is not None else written + "\n")

    def unchanged(self, rel: str, name: str) -> None:
        assert self.path(rel, name).read_bytes() == self.shown[(rel, name)]


def record_writes(plugin: Senpai, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every control-file write the plugin makes, in order (file name, text)."""
    writes: list[tuple[str, str]] = []
    write = plugin.write

    def recording(cg: Any, filename: str, text: str) -> bool:
        writes.append((filename, text))
        return write(cg, filename, text)

    monkeypatch.setattr(plugin, "write", recording)
    return writes


def swappiness_during_reclaim(
    plugin: Senpai, swappiness: Path, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The swappiness file's content at the moment of each reclaim."""
    seen: list[str] = []
    reclaim = plugin.reclaim

    def during(cg: Any, size: int) -> bool:
        seen.append(swappiness.read_text())
        return reclaim(cg, size)

    monkeypatch.setattr(plugin, "reclaim", during)
    return seen


def load(h: Harness, **args: Any) -> Senpai:
    config = {"cgroup": APP, **{k: str(v) for k, v in args.items()}}
    h.load(
        {
            "rulesets": [
                {
                    "name": "senpai",
                    "detectors": [["always", {"name": "continue"}]],
                    "actions": [{"name": "senpai", "args": config}],
                }
            ]
        }
    )
    assert h.engine is not None
    plugin = h.engine.rulesets[0].actions[0]
    assert isinstance(plugin, Senpai)
    return plugin


def app(h: Harness, total: int = 1_000_000, **kw: Any) -> Kernfs:
    """workload.slice/app: 2 GiB, 1 GiB of it file cache, no swap; 64 GiB host."""
    h.proc.meminfo(total=64 * GiB, free=32 * GiB)
    stat = {
        "anon": GiB,
        "file": GiB,
        "active_anon": 512 * MiB,
        "inactive_anon": 512 * MiB,
        "active_file": 512 * MiB,
        "inactive_file": 512 * MiB,
    }
    h.tree.cgroup("workload.slice")
    h.tree.cgroup(APP, current=2 * GiB, stat=stat, **kw)
    h.tree.set_pressure(APP, 0.0, 0.0, 0.0, total=total)
    k = Kernfs(h)
    k.set(APP, "memory.high", "max\n")
    return k


def set_total(h: Harness, total: int, avg10: float = 0.0, avg60: float = 0.0) -> None:
    h.tree.set_pressure(APP, avg10, avg60, 0.0, total=total)


def test_every_arg_and_default(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signal, "signal", lambda sig, handler: None)
    harness.proc.meminfo(total=64 * GiB)
    harness.tree.cgroup(APP)
    plugin = load(harness)
    assert plugin.params == SenpaiParams()
    assert (plugin.immediate_backoff, plugin.memory_high_timeout_ms) == (False, 0)
    assert (plugin.swap_validation, plugin.modulate_swappiness, plugin.log_interval) == (
        False,
        False,
        60,
    )
    plugin = load(
        harness,
        limit_min_bytes=1,
        limit_max_bytes=2,
        interval=3,
        pressure_ms=4,
        pressure_pct=0.5,
        io_pressure_pct=0.6,
        max_probe=0.7,
        max_backoff=0.8,
        coeff_probe=9,
        coeff_backoff=10,
        immediate_backoff="true",
        memory_high_timeout_ms=11,
        swap_threshold=0.12,
        swapout_bps_threshold=13,
        swap_validation="1",
        modulate_swappiness="True",
        log_interval=14,
    )
    assert plugin.params == SenpaiParams(1, 2, 3, 4, 0.5, 0.6, 0.7, 0.8, 9, 10, 0.12, 13)
    assert plugin.immediate_backoff and plugin.swap_validation and plugin.modulate_swappiness
    assert (plugin.memory_high_timeout_ms, plugin.log_interval) == (11, 14)


def test_cgroup_is_required_and_ruleset_cgroup_unknown(harness: Harness) -> None:
    config: dict[str, Any] = {
        "rulesets": [
            {
                "name": "r",
                "detectors": [["g", {"name": "continue"}]],
                "actions": [{"name": "senpai", "args": {}}],
            }
        ]
    }
    with pytest.raises(ConfigError, match="cgroup"):
        harness.load(config)
    config["rulesets"][0]["actions"][0]["args"] = {"cgroup": "a", "ruleset_cgroup": "b"}
    with pytest.raises(ConfigError, match="ruleset_cgroup"):
        harness.load(config)


@pytest.mark.parametrize(
    ("arg", "value"),
    [
        ("pressure_ms", "0"),
        ("pressure_ms", "-5"),
        ("interval", "x"),
        ("max_probe", "abc"),
        ("immediate_backoff", "yes"),
    ],
)
def test_invalid_args_are_rejected(harness: Harness, arg: str, value: str) -> None:
    harness.tree.cgroup(APP)
    with pytest.raises(ConfigError, match=arg):
        load(harness, **{arg: value})


def test_unreadable_meminfo_fails_init(harness: Harness) -> None:
    (harness.proc.root / "meminfo").unlink()
    with pytest.raises(ConfigError, match="Cannot read host MemTotal"):
        load(harness)


def test_needs_the_memory_controller(harness: Harness) -> None:
    harness.env.controllers = frozenset({"cpu", "io"})
    plugin = load(harness)
    assert plugin.unavailable is not None and "memory" in plugin.unavailable


def test_default_mode_end_to_end(harness: Harness, oolog: Path) -> None:
    """The scripted sequence of test_control_law_over_a_scripted_pressure_sequence,
    through the engine: memory.high starts at memory.current, probes, backs off, and
    is reset when someone else changes it."""
    h = harness
    k = app(h)
    plugin = load(h, interval=2, log_interval=8)
    abs_path = h.tree.fs + "/" + APP

    h.tick()  # 1: tracked, memory.high = memory.current
    k.expect(APP, "memory.high", "2147483648")
    assert plugin.tracked[h.tree.path(APP).stat().st_ino].ticks == 2
    h.tick(2)  # 2, 3: counting down
    k.unchanged(APP, "memory.high")
    h.tick()  # 4: quiet: probe by 1%
    k.expect(APP, "memory.high", "2126008320")
    set_total(h, 1_003_000)
    h.tick(2)  # 5, 6
    k.unchanged(APP, "memory.high")
    h.tick()  # 7: 3 ms of stall: probe by 0.09%
    k.expect(APP, "memory.high", "2124091392")
    set_total(h, 1_053_000)
    h.tick()  # 8: 50 ms of stall: back off by 6.25%
    k.expect(APP, "memory.high", "2256846848")
    log = oolog.read_text()
    assert (
        f"cgroup {abs_path} limitgb 1.978 totalus 1053000 deltaus 50000 cumus 50000 "
        "ticks 2 adjust 0.0625"
    ) in log
    # The 8th run is a log_interval run: the probe statistics, then reset.
    assert "cgroup workload.slice/app 2 probe attempts (0.022 gb)" in log
    assert log.count("probe attempts") == 1

    # 9: someone else set memory.high: start over from memory.current.
    k.set(APP, "memory.high", "max\n")
    h.tree.set_current(APP, 3 * GiB)
    h.tick()
    assert (
        f"cgroup {abs_path} memory.high 9223372036854775807 does not match recorded state "
        "2256846848. Resetting cgroup"
    ) in oolog.read_text()
    k.expect(APP, "memory.high", "3221225472")
    assert plugin.tracked[h.tree.path(APP).stat().st_ino].limit == 3 * GiB


def test_probe_statistics_are_logged_every_log_interval_runs_then_reset(
    harness: Harness, oolog: Path
) -> None:
    h = harness
    app(h)
    load(h, interval=0, log_interval=2)
    h.tick(4)  # 1: tracked; 2, 3, 4: one 1% probe each
    lines = [line for line in oolog.read_text().splitlines() if "probe attempts" in line]
    assert [line.split("] ", 1)[1] for line in lines] == [
        "cgroup workload.slice/app 1 probe attempts (0.020 gb)",  # run 2
        "cgroup workload.slice/app 2 probe attempts (0.039 gb)",  # runs 3, 4: 42311680 bytes
    ]


def test_bounds_follow_memory_current_and_stat_between_ticks(harness: Harness) -> None:
    """A probe never goes below limit_min_bytes above the unreclaimable memory read
    in that tick; a back-off never above memory.max."""
    h = harness
    k = app(h)
    load(h, interval=0)
    h.tick()
    k.expect(APP, "memory.high", "2147483648")
    # Only 8 MiB of file cache left: the floor is 100 MiB + 2 GiB - 8 MiB.
    h.tree.write(APP, "memory.stat", f"active_file {4 * MiB}\ninactive_file {4 * MiB}\n")
    h.tick()
    k.expect(APP, "memory.high", str(2 * GiB + 92 * MiB))
    h.tree.write(APP, "memory.max", f"{2 * GiB + 100 * MiB + 123}\n")
    set_total(h, 1_000_000 + 200_000)  # 200 ms: back off by max_backoff (double)
    h.tick()
    k.expect(APP, "memory.high", str(2 * GiB + 100 * MiB))


def test_memory_high_tmp_is_used_where_the_kernel_has_it(harness: Harness, oolog: Path) -> None:
    """Writes ``<bytes> 20000000`` to memory.high.tmp, and memory.high caps it."""
    h = harness
    k = app(h)
    k.set(APP, "memory.high", f"{2 * GiB + 256 * MiB}\n")
    k.set(APP, "memory.high.tmp", "max 0\n")
    load(h, interval=0)
    h.tick()
    k.expect(APP, "memory.high.tmp", "2147483648 20000000", "2147483648 19999000\n")
    h.tick()
    k.expect(APP, "memory.high.tmp", "2126008320 20000000", "2126008320 19999000\n")
    set_total(h, 1_000_000 + 200_000)
    h.tick()
    k.expect(APP, "memory.high.tmp", f"{2 * GiB + 256 * MiB} 20000000")
    k.unchanged(APP, "memory.high")
    assert "limitgb 1.980 totalus 1200000 deltaus 200000 cumus 200000 ticks 0 adjust 1" in (
        oolog.read_text()
    )


def test_memory_high_vs_tmp_is_decided_once_per_plugin(harness: Harness) -> None:
    h = harness
    k = app(h)
    load(h, cgroup="workload.slice/*", interval=0)
    h.tick()
    k.expect(APP, "memory.high", "2147483648")
    # A cgroup created later with memory.high.tmp still gets memory.high.
    h.tree.cgroup("workload.slice/later", current=GiB)
    h.tree.set_pressure("workload.slice/later", 0, total=5)
    k.set("workload.slice/later", "memory.high", "max\n")
    k.set("workload.slice/later", "memory.high.tmp", "max 0\n")
    h.tick()
    k.expect("workload.slice/later", "memory.high", "1073741824")
    k.unchanged("workload.slice/later", "memory.high.tmp")


def test_cgroups_are_tracked_by_inode_in_inode_order(harness: Harness, oolog: Path) -> None:
    """Two cgroups named so that inode order is the reverse of path order (a rename
    keeps the inode): the runs go by inode."""
    h = harness
    stat = {"active_file": 0, "inactive_file": 0}
    for name in ("x", "y"):
        h.tree.cgroup(f"workload.slice/{name}", current=GiB, stat=stat)
        h.tree.set_pressure(f"workload.slice/{name}", 0, total=0)
    first, second = sorted(
        ("x", "y"), key=lambda n: h.tree.path(f"workload.slice/{n}").stat().st_ino
    )
    h.tree.path(f"workload.slice/{first}").rename(h.tree.path("workload.slice/tmp"))
    h.tree.path(f"workload.slice/{second}").rename(h.tree.path("workload.slice/a"))
    h.tree.path("workload.slice/tmp").rename(h.tree.path("workload.slice/b"))
    assert (
        h.tree.path("workload.slice/b").stat().st_ino
        < h.tree.path("workload.slice/a").stat().st_ino
    )
    k = Kernfs(h)
    plugin = load(h, cgroup="workload.slice/*", interval=0, log_interval=1)
    h.tick()
    assert sorted(plugin.tracked) == sorted(
        h.tree.path(f"workload.slice/{n}").stat().st_ino for n in ("a", "b")
    )
    h.tick()
    lines = [line for line in oolog.read_text().splitlines() if "probe attempts" in line]
    assert [line.split("cgroup ")[1].split()[0] for line in lines] == [
        "workload.slice/b",
        "workload.slice/a",
    ]

    # Removed and re-created under the same name: a new cgroup, initialised afresh
    # (no "does not match" reset), and the old state is gone.
    old_inode = h.tree.path("workload.slice/b").stat().st_ino
    h.tree.remove("workload.slice/b")
    h.tick()
    assert old_inode not in plugin.tracked
    h.tree.cgroup("workload.slice/b", current=GiB // 2, stat=stat)
    h.tree.set_pressure("workload.slice/b", 0, total=0)
    k.set("workload.slice/b", "memory.high", "max\n")
    h.tick()
    k.expect("workload.slice/b", "memory.high", str(GiB // 2))
    assert "does not match" not in oolog.read_text()


def test_a_cgroup_that_cannot_be_written_is_forgotten_and_retried(harness: Harness) -> None:
    h = harness
    app(h)
    (h.tree.path(APP) / "memory.high").unlink()
    plugin = load(h, interval=0)
    h.tick()
    assert plugin.tracked == {}
    assert not (h.tree.path(APP) / "memory.high").exists()  # never created


def test_root_cgroup_is_never_tracked(harness: Harness) -> None:
    """The pressure total is read from the cgroup directory, and the root cgroup has
    no memory.pressure (the host's is /proc/pressure/memory): upstream never tracks
    the root, so it never reclaims host-wide."""
    h = harness
    h.proc.meminfo(total=64 * GiB)
    (h.tree.root / "memory.reclaim").write_text("")
    plugin = load(h, cgroup="/", immediate_backoff="true", interval=0)
    h.tick(3)
    assert plugin.tracked == {}
    assert (h.tree.root / "memory.reclaim").read_text() == ""


def test_a_cgroup_replaced_mid_tick_is_never_written(harness: Harness) -> None:
    h = harness
    k = app(h)
    plugin = load(h)
    h.ctx.refresh()
    [cg] = h.ctx.resolve(plugin.cgroup)
    cg.dead = True  # what the context marks when the directory is a new cgroup
    assert not plugin.write(cg, "memory.high", "1")
    k.unchanged(APP, "memory.high")


def test_pressure_without_total_is_logged_once_and_not_tracked(
    harness: Harness, oolog: Path
) -> None:
    """Upstream throws "Senpai enabled but no total pressure info" and dies."""
    h = harness
    k = app(h)
    h.tree.write(
        APP, "memory.pressure", "aggr 316016073\nsome 0.00 0.03 0.05\nfull 0.00 0.03 0.05\n"
    )
    plugin = load(h, interval=0)
    h.tick(3)
    assert plugin.tracked == {}
    assert oolog.read_text().count("no total pressure info") == 1
    set_total(h, 7)
    k.set(APP, "memory.high", "max\n")
    h.tick()
    assert next(iter(plugin.tracked.values())).last_total == 7


def test_memory_stat_without_file_counters_forgets_the_cgroup(
    harness: Harness, oolog: Path
) -> None:
    h = harness
    k = app(h)
    plugin = load(h, interval=0)
    h.tick()
    k.expect(APP, "memory.high", "2147483648")
    h.tree.write(APP, "memory.stat", "anon 5\n")
    h.tick()
    assert plugin.tracked == {}
    assert "Invalid memory.stat cgroup file" in oolog.read_text()
    assert plugin.run(h.ctx) is PluginRet.CONTINUE


def test_immediate_backoff_reclaims_through_memory_reclaim(harness: Harness) -> None:
    h = harness
    k = app(h, io_pressure=(0.0, 0.0, 0.0))
    k.set(APP, "memory.reclaim", "")
    load(h, immediate_backoff="true", interval=1)
    h.tick()  # 1: tracked, nothing written
    k.unchanged(APP, "memory.high")
    h.tick()  # 2: counting down
    k.unchanged(APP, "memory.reclaim")
    h.tick()  # 3: pressure is low: reclaim 1% of the way down to 1 GiB + 100 MiB
    k.expect(APP, "memory.reclaim", "9687040", "")
    h.tick()  # 4
    set_total(h, 1_000_000, avg10=0.0, avg60=0.5)
    h.tick(3)  # 5..7: too much pressure: no reclaim, checked again every run
    k.unchanged(APP, "memory.reclaim")
    set_total(h, 1_000_000)
    h.tick()  # 8
    k.expect(APP, "memory.reclaim", "9687040", "")
    k.unchanged(APP, "memory.high")


def test_immediate_backoff_without_memory_reclaim_pokes_memory_high(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    k = app(h, io_pressure=(0.0, 0.0, 0.0))
    plugin = load(h, immediate_backoff="true", interval=0)
    writes = record_writes(plugin, monkeypatch)
    h.tick(2)
    assert writes == [("memory.high", str(2 * GiB - 9687040)), ("memory.high", str(INT64_MAX))]
    k.expect(APP, "memory.high", str(INT64_MAX), "max\n")
    assert plugin.has_memory_reclaim is False


def test_immediate_backoff_pokes_memory_high_tmp_with_upstreams_durations(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    k = app(h, io_pressure=(0.0, 0.0, 0.0))
    k.set(APP, "memory.high.tmp", "max 0\n")
    plugin = load(h, immediate_backoff="true", interval=0)
    writes = record_writes(plugin, monkeypatch)
    h.tick(2)
    assert writes == [
        ("memory.high.tmp", f"{2 * GiB - 9687040} 20000000"),
        ("memory.high.tmp", f"{INT64_MAX} 0"),
    ]
    k.unchanged(APP, "memory.high")


def test_immediate_backoff_needs_memory_above_the_floor(harness: Harness) -> None:
    h = harness
    k = app(h, io_pressure=(0.0, 0.0, 0.0))
    k.set(APP, "memory.reclaim", "")
    h.tree.write(APP, "memory.min", f"{2 * GiB}\n")
    plugin = load(h, immediate_backoff="true", interval=0)
    h.tick(3)
    k.unchanged(APP, "memory.reclaim")
    assert next(iter(plugin.tracked.values())).probe_count == 0


def test_memory_reclaim_failure_forgets_the_cgroup_until_next_run(harness: Harness) -> None:
    """The kernel answers EAGAIN when it reclaimed less than asked: upstream then
    forgets the cgroup, which starts counting down again."""
    h = harness
    app(h, io_pressure=(0.0, 0.0, 0.0))
    (h.tree.path(APP) / "memory.reclaim").mkdir()  # any write fails
    plugin = load(h, immediate_backoff="true", interval=3)
    h.tick(5)  # tracked, 3 runs counting down, then the reclaim fails
    assert plugin.tracked == {}
    h.tick()
    assert next(iter(plugin.tracked.values())).ticks == 3


def test_swap_validation_end_to_end(harness: Harness) -> None:
    """With swap on the host, reclaim happens only when the effective swap use is at or
    above swap_threshold (upstream's code)."""
    h = harness
    k = app(h, io_pressure=(0.0, 0.0, 0.0), swap=256 * MiB, swap_max=GiB)
    h.tree.cgroup("workload.slice", swap=0, swap_max="max")
    h.proc.swaps((4 * GiB, 0))
    (h.proc.root / "sys" / "vm").mkdir(parents=True)
    (h.proc.root / "sys" / "vm" / "swappiness").write_text("60\n")
    k.set(APP, "memory.reclaim", "")
    load(h, immediate_backoff="true", interval=0, swap_validation="true")
    h.tick(3)  # 25% of swap.max used: below 0.8
    k.unchanged(APP, "memory.reclaim")
    h.tree.write(APP, "memory.swap.current", f"{900 * MiB}\n")
    h.tick()
    # Floor: 100 MiB + 2 GiB - (1 GiB file + min(124 MiB swap free, 1 GiB anon)).
    floor = 100 * MiB + GiB - 124 * MiB
    k.expect(APP, "memory.reclaim", str(int((2 * GiB - floor) * 0.01) & ~0xFFF), "")


def test_modulate_swappiness_lowers_it_during_the_reclaim_only(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    k = app(h, io_pressure=(0.0, 0.0, 0.0), swap=256 * MiB, swap_max=GiB)
    h.tree.cgroup("workload.slice", swap=0, swap_max="max")
    h.proc.swaps((4 * GiB, 256 * MiB))
    h.proc.vmstat(pswpout=0)
    swappiness = h.proc.root / "sys" / "vm" / "swappiness"
    swappiness.parent.mkdir(parents=True)
    swappiness.write_text("60\n")
    k.set(APP, "memory.reclaim", "")
    plugin = load(h, immediate_backoff="true", interval=0, modulate_swappiness="true")
    seen = swappiness_during_reclaim(plugin, swappiness, monkeypatch)
    h.tick()  # 1: tracked; first swap-out sample
    h.proc.vmstat(pswpout=64)
    h.tick()  # 2: reclaim
    # Effective swap use 256 MiB / 1 GiB = 0.25: factor 1 - 0.25/0.8 = 0.6875 (the
    # swap-out rate's factor is higher); trunc(60 * 0.6875) = 41.
    assert seen == ["41\n"]
    assert swappiness.read_text() == "60\n"  # restored
    rate = 64 * h.env.system.page_size
    assert plugin.swapout.bps_60 == pytest.approx(rate * (1 - math.exp(-1 / 60)))
    # Floor with swap: 100 MiB + 2 GiB - (1 GiB + min(768 MiB, 1 GiB)) = 356 MiB.
    k.expect(APP, "memory.reclaim", str(int((2 * GiB - 356 * MiB) * 0.01) & ~0xFFF), "")


def test_swapout_averages_restart_when_vmstat_goes_missing(harness: Harness) -> None:
    h = harness
    app(h)
    h.proc.vmstat(pswpout=0)
    plugin = load(h, immediate_backoff="true", modulate_swappiness="true")
    h.tick()
    h.proc.vmstat(pswpout=1000)
    h.tick()
    assert plugin.swapout.bps_60 > 0 and plugin.swapout.bps_300 > 0
    (h.proc.root / "vmstat").unlink()
    h.tick()
    assert (plugin.swapout.bps_60, plugin.swapout.bps_300) == (0.0, 0.0)


def test_modulate_swappiness_restores_it_when_the_reclaim_fails(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    app(h, io_pressure=(0.0, 0.0, 0.0), swap=0, swap_max=GiB)
    h.tree.cgroup("workload.slice", swap=0, swap_max="max")
    h.proc.swaps((4 * GiB, 0))
    swappiness = h.proc.root / "sys" / "vm" / "swappiness"
    swappiness.parent.mkdir(parents=True)
    swappiness.write_text("60\n")
    (h.tree.path(APP) / "memory.reclaim").mkdir()
    plugin = load(h, immediate_backoff="true", interval=0, modulate_swappiness="true")
    seen = swappiness_during_reclaim(plugin, swappiness, monkeypatch)
    h.tick(2)
    assert seen == ["60\n"]  # factor 1 - 0/0.8 = 1: 60 written (in place)
    assert swappiness.read_text() == "60\n"
    assert plugin.tracked == {}


def test_memory_high_write_timeout_logs_and_keeps_the_cgroup(
    harness: Harness, oolog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    k = app(h, io_pressure=(0.0, 0.0, 0.0))
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        plugin = load(h, immediate_backoff="true", interval=0, memory_high_timeout_ms=10)
        # A handler is installed so interrupting the writing thread is safe.
        assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None)
    finally:
        signal.signal(signal.SIGUSR1, previous or signal.SIG_DFL)
    released = threading.Event()
    plugin.interrupt = lambda ident: released.set()
    write = plugin.write_memhigh

    def stuck(cg: Any, value: int) -> bool:
        released.wait(10)
        return write(cg, value)

    monkeypatch.setattr(plugin, "write_memhigh", stuck)
    h.tick(2)
    assert (
        "Failed to write memory limit for workload.slice/app: Timed out waiting execution: "
        "Connection timed out"
    ) in oolog.read_text()
    # Assumed valid: memory.high is reset and the reclaim counted.
    k.expect(APP, "memory.high", str(INT64_MAX))
    assert next(iter(plugin.tracked.values())).probe_count == 1
