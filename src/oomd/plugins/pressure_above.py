"""``pressure_above``: fires when the 10 s full pressure of the most pressured of its
cgroups stays above ``threshold`` percent for ``duration`` seconds."""

from __future__ import annotations

from collections.abc import Sequence

from oomd.plugin import (
    ZERO_PRESSURE,
    CgroupContext,
    CgroupPattern,
    Detector,
    OomdContext,
    PluginRet,
    Pressure,
    ThresholdTimer,
    arg,
    detector_reading,
    fmt_mb,
    log,
    parse_cgroups,
    parse_int,
    parse_resource,
    require_cgroups,
    to_float32,
)
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def pressure_score(p: Pressure) -> float:
    """``3*avg10 + 2*avg60 + avg300`` in single precision, as upstream computes it on
    its ``float`` pressures (so equal-looking scores compare exactly as upstream)."""
    f = to_float32
    return f(f(f(f(p.avg10) * 3) + f(f(p.avg60) * 2)) + f(p.avg300))


def most_pressured(cgroups: Sequence[CgroupContext], resource: str) -> tuple[Pressure, int]:
    """The highest :func:`pressure_score` full pressure among ``cgroups`` (a cgroup
    without the file counts as zero; the first of equal scores wins) and that cgroup's
    memory usage."""
    best, usage, _ = most_pressured_cgroup(cgroups, resource)
    return best, usage


def most_pressured_cgroup(
    cgroups: Sequence[CgroupContext], resource: str
) -> tuple[Pressure, int, str | None]:
    """:func:`most_pressured` and the relative path of that cgroup (None: none had
    any pressure)."""
    best = ZERO_PRESSURE
    usage = 0
    best_score = 0.0
    name: str | None = None
    for cg in cgroups:
        p = cg.pressure(resource) or ZERO_PRESSURE
        score = pressure_score(p)
        if score > best_score:
            best, best_score = p, score
            usage = cg.current_usage() or 0
            name = cg.path.relative
    return best, usage, name


class PressureAbove(Detector):
    name = "pressure_above"
    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    ruleset_cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    resource: str = arg(parse_resource, required=True)
    threshold: int = arg(parse_int, required=True)
    duration: int = arg(parse_int, required=True)

    def setup(self) -> None:
        require_cgroups(self)
        self.timer = ThresholdTimer()

    def run(self, ctx: OomdContext) -> PluginRet:
        cgroups = ctx.resolve(self.cgroup, self.ruleset_cgroup)
        # A PSI trigger at the threshold wakes the daemon early (oomd.cgroup.triggers).
        ctx.watch_threshold(cgroups, self.resource, "full", self.threshold)
        pressure, usage = most_pressured(cgroups, self.resource)
        if self.timer.update(pressure.avg10 > self.threshold, ctx.now(), self.duration):
            log.info(
                f"10s pressure {pressure.avg10:.2f} is over the threshold of {self.threshold} "
                f"for {self.duration} seconds , total usage is {fmt_mb(usage)}MB"
            )
            return PluginRet.CONTINUE
        return PluginRet.STOP

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        cgroups = ctx.resolve(self.cgroup, self.ruleset_cgroup)
        pressure, usage, cgroup = most_pressured_cgroup(cgroups, self.resource)
        return detector_reading(
            what=f"{self.resource} full avg10",
            reading=pressure.avg10,
            threshold=self.threshold,
            unit="%",
            over=pressure.avg10 > self.threshold,
            held=self.timer.held(ctx.now()),
            duration=self.duration,
            cgroup=cgroup,
            usage=usage,
            watched=len(cgroups),
        )
