"""``pressure_trigger``: fires on the tick after the kernel reports that one of its
cgroups stalled ``stall_ms`` within ``window_ms`` (a PSI trigger), for sub-second
reaction without the lag of the 10 s average ``pressure_above`` reads.

Args: ``cgroup`` (patterns), ``resource`` (memory or io), ``type`` (``some``, the
default, or ``full``), ``stall_ms`` (default 150) and ``window_ms`` (500 to 10,000,
default 1000). Not an upstream plugin.

With a kernel trigger (oomd.cgroup.triggers) on a cgroup's pressure file, the detector
fires (CONTINUE) on a tick where that trigger fired since the detector's previous run,
and returns STOP otherwise; the trigger itself wakes the daemon for an early tick, so
the reaction follows the stall by well under a second. The form the kernel accepted is
logged: without CAP_SYS_RESOURCE the window is rounded up to a multiple of 2 s and the
stall scaled in proportion.

Without a trigger (no daemon, old kernel, a fake tree, more watched files than the
limit) it falls back to the PSI ``total`` counter of the chosen line: it fires when the
stall time added since its previous run, divided by the time since then, is at least
``stall_ms / window_ms``: the trigger's threshold as a rate averaged over the time
between two runs (usually the interval). Its first run, and a run after the counter
went backwards (a re-created cgroup), only takes the sample. A cgroup without the file
or the line never fires.
"""

from __future__ import annotations

from oomd.cgroup.triggers import WINDOW_MAX_US, WINDOW_MIN_US
from oomd.plugin import (
    ArgError,
    CgroupPattern,
    Detector,
    OomdContext,
    PluginRet,
    arg,
    in_range,
    log,
    one_of,
    parse_cgroups,
    parse_int,
    parse_resource,
    parse_string,
    require_cgroups,
)
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def stalled_enough(
    previous: tuple[float, int] | None, now: float, total: int, stall_ms: int, window_ms: int
) -> bool:
    """The fallback test: the stall rate since ``previous`` (time, total in us) is at
    least ``stall_ms / window_ms``."""
    if previous is None:
        return False
    then, before = previous
    elapsed = now - then
    if elapsed <= 0 or total < before:
        return False
    # (total - before) us of stall in elapsed s, against stall_ms per window_ms.
    return (total - before) * window_ms >= stall_ms * elapsed * 1_000_000


class PressureTrigger(Detector):
    name = "pressure_trigger"
    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    ruleset_cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    resource: str = arg(parse_resource, required=True)
    type: str = arg(parse_string, default="some", validate=one_of("some", "full"))
    stall_ms: int = arg(parse_int, default=150, validate=in_range(1, 10_000))
    window_ms: int = arg(
        parse_int, default=1000, validate=in_range(WINDOW_MIN_US // 1000, WINDOW_MAX_US // 1000)
    )

    def setup(self) -> None:
        require_cgroups(self)
        if self.stall_ms > self.window_ms:
            raise ArgError(
                "stall_ms", f"must be at most window_ms ({self.window_ms}), not {self.stall_ms}"
            )
        #: Per cgroup: (trigger, its event count) as of the previous run.
        self._seen: dict[str, tuple[object, int]] = {}
        #: Per cgroup without a trigger: (time, PSI total) of the previous run.
        self._totals: dict[str, tuple[float, int]] = {}

    def run(self, ctx: OomdContext) -> PluginRet:
        stall_us = self.stall_ms * 1000
        window_us = self.window_ms * 1000
        full = self.type == "full"
        now = ctx.now()
        seen: dict[str, tuple[object, int]] = {}
        totals: dict[str, tuple[float, int]] = {}
        fired: list[str] = []
        for cg in ctx.resolve(self.cgroup, self.ruleset_cgroup):
            key = cg.path.absolute
            name = cg.path.relative or "/"
            trigger = ctx.watch_pressure(cg, self.resource, self.type, stall_us, window_us)
            if trigger is not None:
                events = trigger.events
                before = self._seen.get(key)
                if before is not None and before[0] is trigger and events > before[1]:
                    fired.append(f"{name}: trigger '{trigger.form}' fired")
                seen[key] = (trigger, events)
                continue
            pressure = cg.pressure(self.resource, full)
            total = None if pressure is None else pressure.total
            if total is None:
                continue
            previous = self._totals.get(key)
            if stalled_enough(previous, now, total, self.stall_ms, self.window_ms):
                assert previous is not None
                stalled_ms = (total - previous[1]) / 1000
                fired.append(
                    f"{name}: {self.type} stall {stalled_ms:.0f} ms in the last "
                    f"{now - previous[0]:.2f} s (polled)"
                )
            totals[key] = (now, total)
        self._seen = seen
        self._totals = totals
        if not fired:
            return PluginRet.STOP
        log.info(
            f"{self.resource} pressure trigger ({self.type} {self.stall_ms} ms per "
            f"{self.window_ms} ms) fired: " + "; ".join(fired)
        )
        return PluginRet.CONTINUE

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        """Per watched cgroup: whether a kernel trigger watches it and has fired since
        the last run, or (polled) its stall since the last run - the tests ``run``
        makes, on the state it left; no trigger is created."""
        now = ctx.now()
        full = self.type == "full"
        cgroups = ctx.resolve(self.cgroup, self.ruleset_cgroup)
        firing: list[str] = []
        with_trigger = 0
        for cg in cgroups:
            key = cg.path.absolute
            seen = self._seen.get(key)
            if seen is not None:
                with_trigger += 1
                trigger, events = seen
                if getattr(trigger, "events", events) > events:
                    firing.append(cg.path.relative or "/")
                continue
            pressure = cg.pressure(self.resource, full)
            total = None if pressure is None else pressure.total
            if total is not None and stalled_enough(
                self._totals.get(key), now, total, self.stall_ms, self.window_ms
            ):
                firing.append(cg.path.relative or "/")
        return {
            "what": f"{self.resource} {self.type} stall {self.stall_ms} ms per {self.window_ms} ms",
            "over": bool(firing),
            "firing_cgroups": firing[:10],
            "watched": len(cgroups),
            "with_kernel_trigger": with_trigger,
        }
