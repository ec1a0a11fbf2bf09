"""``kill_by_swap_usage``: kill the cgroup using the most swap.

As upstream's ``KillSwapUsage-inl.h`` (HEAD):

* candidates whose ``memory.swap.current`` (absent = 0) is strictly greater than
  ``threshold`` (default 1 byte, so a cgroup needs at least 2 bytes of swap; 0.5.0
  used ``>=``); ``threshold`` is a size string, a bare number of MiB, or ``N%`` of
  SwapTotal (:func:`oomd.engine.args.parse_size_or_percent`, as ``memory_above``);
* ranked by swap usage or, with ``biased_swap_kill``, by the swap used in excess of
  ``SwapTotal / MemTotal`` times the cgroup's memory protection (the swap share its
  memory.low/min protection entitles it to); kill preferences dominate the key.

Deliberate fix: upstream reads SwapTotal and MemTotal into 32-bit ints, so on hosts
with 2 GiB of swap or more a ``N%`` threshold (and the biased ratio) is computed from a
wrapped value (4 GiB of swap reads as 0). We use the real 64-bit values. The ratio and
the protection product stay in single precision, as upstream computes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from oomd.plugin import (
    CgroupContext,
    KillPlugin,
    KillPreference,
    OomdContext,
    SizeOrPercent,
    arg,
    fmt_mb,
    parse_bool,
    parse_size_or_percent,
    parse_string,
    sort_with_preferences,
)
from oomd.plugin import to_float32 as f32
from oomd.typeshim import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from typing import Any


class SwapView(Protocol):
    """What the ranking reads of a cgroup (a CgroupContext, or a test double)."""

    def swap_usage(self) -> int | None: ...
    def memory_protection(self) -> int | None: ...
    def kill_preference(self) -> KillPreference: ...


S = TypeVar("S", bound=SwapView)


def swap_ratio(swap_total: int, mem_total: int) -> float:
    """SwapTotal / MemTotal in single precision; 0 without a positive MemTotal."""
    if mem_total <= 0:
        return 0.0
    return f32(f32(swap_total) / f32(mem_total))


def swap_excess(cg: SwapView, ratio: float) -> int:
    """Swap used beyond ``ratio`` times the cgroup's memory protection (never below 0);
    plain swap usage when the protection is unknown."""
    swap = cg.swap_usage() or 0
    protection = cg.memory_protection()
    if protection is None:
        return swap
    low = f32(ratio * f32(protection))
    swap_low = math.trunc(low) if math.isfinite(low) else 0
    return max(swap - swap_low, 0)


def rank_by_swap(peers: Sequence[S], threshold: int, biased: bool, ratio: float) -> list[S]:
    """Cgroups above the threshold, best victim first (a pure function of what it
    reads)."""
    eligible = [cg for cg in peers if (cg.swap_usage() or 0) > threshold]
    if biased:
        return sort_with_preferences(eligible, lambda cg: swap_excess(cg, ratio))
    return sort_with_preferences(eligible, lambda cg: cg.swap_usage() or 0)


class KillSwapUsage(KillPlugin):
    name = "kill_by_swap_usage"
    needs_controllers = frozenset({"memory"})
    # Resolved against SwapTotal in setup (default: 1 byte).
    threshold: SizeOrPercent | None = arg(parse_size_or_percent, default=None)
    biased_swap_kill: bool = arg(parse_bool, default=False)
    # Upstream's test hook: read SwapTotal/MemTotal from this file.
    meminfo_location: str | None = arg(parse_string, default=None)

    threshold_bytes: int
    ratio: float

    def setup(self) -> None:
        super().setup()
        try:
            info = self.env.system.read_meminfo(self.meminfo_location)
        except OSError:
            info = {}  # as upstream, an unreadable meminfo means a SwapTotal of 0
        swap_total = info.get("SwapTotal", 0)
        mem_total = info.get("MemTotal", 0)
        self.ratio = swap_ratio(swap_total, mem_total)
        self.threshold_bytes = 1 if self.threshold is None else self.threshold.resolve(swap_total)

    def rank(self, ctx: OomdContext, cgroups: list[CgroupContext]) -> list[CgroupContext]:
        return rank_by_swap(cgroups, self.threshold_bytes, self.biased_swap_kill, self.ratio)

    def pick_reason(
        self, ctx: OomdContext, target: CgroupContext, peers: list[CgroupContext]
    ) -> str:
        text = f"{self.picked(target)} based on swap usage at {fmt_mb(target.swap_usage() or 0)}MB"
        if self.biased_swap_kill:
            text += f" exceeding swapLow value by {fmt_mb(swap_excess(target, self.ratio))}MB"
        return text

    def rank_numbers(
        self, ctx: OomdContext, cg: CgroupContext, peers: list[CgroupContext]
    ) -> dict[str, Any]:
        numbers: dict[str, Any] = {"swap": cg.swap_usage() or 0}
        if self.biased_swap_kill:
            numbers["swap_excess"] = swap_excess(cg, self.ratio)
        numbers["usage"] = cg.current_usage() or 0
        numbers["preference"] = cg.kill_preference().name
        return numbers
