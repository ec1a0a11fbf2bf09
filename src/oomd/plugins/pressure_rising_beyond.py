"""``pressure_rising_beyond``: fires when the 60 s full pressure of the most pressured
of its cgroups has stayed above ``threshold`` for ``duration`` seconds, the 10 s
pressure is above it too, and the 10 s pressure is not falling fast.

"Falling fast" means this tick's avg10 is below ``fast_fall_ratio`` times the avg10
seen on the previous run. As upstream, the remembered avg10 starts at 100, so on its
first run the detector can only fire when avg10 >= 100 * ``fast_fall_ratio`` (85 with
the default ratio). All of this is single-precision arithmetic, as upstream's.
"""

from __future__ import annotations

from oomd.plugin import (
    OomdContext,
    PluginRet,
    Pressure,
    ThresholdTimer,
    arg,
    detector_reading,
    fmt_mb,
    log,
    parse_float32,
    require_cgroups,
    to_float32,
)
from oomd.plugins.pressure_above import PressureAbove, most_pressured, most_pressured_cgroup
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

#: avg10 remembered before the first run (upstream's ``last_pressure_{100, 100, 100}``).
INITIAL_LAST_AVG10 = 100.0
DEFAULT_FAST_FALL_RATIO = to_float32(0.85)


def falling_rapidly(avg10: float, last_avg10: float, fast_fall_ratio: float) -> bool:
    """avg10 < last_avg10 * fast_fall_ratio, computed in single precision."""
    f = to_float32
    return f(avg10) < f(f(last_avg10) * f(fast_fall_ratio))


def rising_beyond(
    pressure: Pressure, last_avg10: float, threshold: int, fast_fall_ratio: float
) -> tuple[bool, bool]:
    """(avg60 over the threshold, avg10 over it and not falling fast): the first starts
    or keeps the duration timer, both together (once the timer is met) fire."""
    over60 = to_float32(pressure.avg60) > threshold
    over10 = to_float32(pressure.avg10) > threshold
    return over60, over10 and not falling_rapidly(pressure.avg10, last_avg10, fast_fall_ratio)


class PressureRisingBeyond(PressureAbove):
    """pressure_above's args (a subclass for them only: ``setup`` and ``run`` are its
    own), then ``fast_fall_ratio``."""

    name = "pressure_rising_beyond"
    fast_fall_ratio: float = arg(parse_float32, default=DEFAULT_FAST_FALL_RATIO)

    def setup(self) -> None:
        require_cgroups(self)
        self.timer = ThresholdTimer()
        self.last_avg10 = INITIAL_LAST_AVG10

    def run(self, ctx: OomdContext) -> PluginRet:
        cgroups = ctx.resolve(self.cgroup, self.ruleset_cgroup)
        # A PSI trigger at the threshold wakes the daemon early (oomd.cgroup.triggers).
        ctx.watch_threshold(cgroups, self.resource, "full", self.threshold)
        pressure, usage = most_pressured(cgroups, self.resource)
        over60, rising10 = rising_beyond(
            pressure, self.last_avg10, self.threshold, self.fast_fall_ratio
        )
        # Remembered on every run, firing or not (no cgroup at all remembers zeros).
        self.last_avg10 = pressure.avg10
        met = self.timer.update(over60, ctx.now(), self.duration)
        if met and rising10:
            log.info(
                f"1m pressure {to_float32(pressure.avg60):.2f} is over the threshold of "
                f"{self.threshold} for {self.duration} seconds , total usage is "
                f"{fmt_mb(usage)}MB"
            )
            return PluginRet.CONTINUE
        return PluginRet.STOP

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        cgroups = ctx.resolve(self.cgroup, self.ruleset_cgroup)
        pressure, usage, cgroup = most_pressured_cgroup(cgroups, self.resource)
        over60, rising10 = rising_beyond(
            pressure, self.last_avg10, self.threshold, self.fast_fall_ratio
        )
        return detector_reading(
            what=f"{self.resource} full avg60",
            reading=to_float32(pressure.avg60),
            threshold=self.threshold,
            unit="%",
            over=over60,
            held=self.timer.held(ctx.now()),
            duration=self.duration,
            cgroup=cgroup,
            usage=usage,
            watched=len(cgroups),
            avg10=to_float32(pressure.avg10),
            rising=rising10,
        )
