"""``memory_reclaim``: fires while the kernel has reclaimed memory from its cgroups in
the last ``duration`` seconds.

Every run sums ``memory.stat`` ``pgscan`` over the cgroups (a missing file or key
counts 0); a sum larger than the previous run's (initially 0) is a reclaim. As
upstream, the first run that sees any pages scanned counts as a reclaim, and a
cgroup that vanishes lowers the sum (so its return counts as a reclaim again).

Deliberate difference: before any reclaim has been seen the detector does not fire.
Upstream starts from the monotonic clock's epoch (boot), so it fires during the first
``duration`` seconds after boot without any reclaim.
"""

from __future__ import annotations

from collections.abc import Iterable

from oomd.plugin import (
    CgroupPattern,
    Detector,
    OomdContext,
    PluginRet,
    arg,
    detector_reading,
    parse_cgroups,
    parse_int,
    require_cgroups,
)
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def total_pgscan(values: Iterable[int | None]) -> int:
    """The sum of the cgroups' pgscan counters, absent ones counting 0."""
    return sum(v for v in values if v is not None)


def reclaim_seen(
    last_pgscan: int, last_reclaim_at: float | None, pgscan: int, now: float
) -> float | None:
    """When the last reclaim was, given the pgscan total now: now if it grew."""
    return now if pgscan > last_pgscan else last_reclaim_at


def reclaimed_recently(last_reclaim_at: float | None, now: float, duration: int) -> bool:
    """Whether the last reclaim was at most ``duration`` whole seconds ago (elapsed
    time truncated to seconds, as upstream): ``duration`` 0 fires on the tick of
    the reclaim and during the following second only."""
    return last_reclaim_at is not None and int(now - last_reclaim_at) <= duration


class MemoryReclaim(Detector):
    name = "memory_reclaim"
    needs_controllers = frozenset({"memory"})
    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    ruleset_cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    duration: int = arg(parse_int, required=True)

    def setup(self) -> None:
        require_cgroups(self)
        self.last_pgscan = 0
        self.last_reclaim_at: float | None = None

    def run(self, ctx: OomdContext) -> PluginRet:
        pgscan = total_pgscan(
            cg.memory_stat_value("pgscan") for cg in ctx.resolve(self.cgroup, self.ruleset_cgroup)
        )
        now = ctx.now()
        self.last_reclaim_at = reclaim_seen(self.last_pgscan, self.last_reclaim_at, pgscan, now)
        self.last_pgscan = pgscan
        if reclaimed_recently(self.last_reclaim_at, now, self.duration):
            return PluginRet.CONTINUE
        return PluginRet.STOP

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        cgroups = ctx.resolve(self.cgroup, self.ruleset_cgroup)
        pgscan = total_pgscan(cg.memory_stat_value("pgscan") for cg in cgroups)
        now = ctx.now()
        at = reclaim_seen(self.last_pgscan, self.last_reclaim_at, pgscan, now)
        return detector_reading(
            what="pgscan",
            reading=pgscan,
            threshold=None,
            unit="",
            over=reclaimed_recently(at, now, self.duration),
            duration=self.duration,
            last_reclaim_ago_s=None if at is None else max(0.0, now - at),
            watched=len(cgroups),
        )
