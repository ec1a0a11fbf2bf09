"""``swap_free``: fires when free swap is below ``threshold_pct`` percent of the total
and (upstream HEAD) the host swaps out at least ``swapout_bps_threshold`` bytes per
second.

Swap totals come from ``/proc/swaps`` (not meminfo), as upstream; with no swap the
threshold is 0 and the detector never fires. The arithmetic is upstream's unsigned
64-bit one, so a ``threshold_pct`` below 0 or above 100 (accepted, with a warning)
makes it fire whenever swap is enabled. The swap-out rate is sampled every tick from
``/proc/vmstat`` ``pswpout`` (see :meth:`SystemContext.swapout_bps`) only when
``swapout_bps_threshold`` is positive: with 0 (the default) the rate cannot matter.
"""

from __future__ import annotations

from oomd.cnum import UINT64_MAX
from oomd.plugin import (
    Detector,
    OomdContext,
    PluginEnv,
    PluginRet,
    arg,
    detector_reading,
    log,
    parse_int,
    parse_int64,
)
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def parse_threshold_pct(value: str, env: PluginEnv) -> int:
    """An integer; outside 0..100 it is accepted as upstream, with a note."""
    pct = parse_int(value, env)
    if not 0 <= pct <= 100:
        env.notes.append(
            f"threshold_pct {pct} is outside 0..100: swap_free then fires whenever swap "
            "is enabled (as upstream)"
        )
    return pct


def swap_threshold(total: int, pct: int) -> int:
    """``total * pct / 100`` in upstream's unsigned 64-bit arithmetic."""
    return ((total * (pct & UINT64_MAX)) & UINT64_MAX) // 100


def swap_low(total: int, used: int, pct: int, swapout_bps: float, bps_threshold: int) -> bool:
    """Free swap strictly below the threshold, and the swap-out rate at least
    ``bps_threshold``."""
    free = (total - used) & UINT64_MAX
    return free < swap_threshold(total, pct) and swapout_bps >= bps_threshold


class SwapFree(Detector):
    name = "swap_free"
    threshold_pct: int = arg(parse_threshold_pct, required=True)
    swapout_bps_threshold: int = arg(parse_int64, default=0)

    def prerun(self, ctx: OomdContext) -> None:
        # Sample every tick, so the rate always covers the last interval.
        if self.swapout_bps_threshold > 0:
            ctx.system.swapout_bps()

    def run(self, ctx: OomdContext) -> PluginRet:
        total, used = ctx.system.swaps()
        # pswpout never decreases, so the rate is >= 0 and a threshold <= 0 always holds.
        rate = ctx.system.swapout_bps() if self.swapout_bps_threshold > 0 else 0.0
        if not swap_low(total, used, self.threshold_pct, rate, self.swapout_bps_threshold):
            return PluginRet.STOP
        free = (total - used) & UINT64_MAX
        log.info(
            f"SwapFree {free >> 20}MB is smaller than the threshold of "
            f"{swap_threshold(total, self.threshold_pct) >> 20}MB, total swap is "
            f"{total >> 20}MB"
        )
        if self.swapout_bps_threshold > 0:
            log.info(
                f"SwapOut rate {int(rate)}bps is greater than the threshold of "
                f"{self.swapout_bps_threshold}bps"
            )
        return PluginRet.CONTINUE

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        total, used = ctx.system.swaps()
        # The rate is read only when prerun sampled it this tick (a second sample
        # would move the detector's swap-out history).
        rate = ctx.system.swapout_bps() if self.swapout_bps_threshold > 0 else 0.0
        free = (total - used) & UINT64_MAX
        return detector_reading(
            what="free swap",
            reading=free,
            threshold=swap_threshold(total, self.threshold_pct),
            unit="bytes",
            over=swap_low(total, used, self.threshold_pct, rate, self.swapout_bps_threshold),
            below=True,
            swap_total=total,
            swapout_bps=rate,
            swapout_bps_threshold=self.swapout_bps_threshold,
        )
