"""``dump_cgroup_overview``: logs one overview line per cgroup under memory pressure
(full avg10 >= 1 and avg60 > 0), or per cgroup whatever its pressure with ``always``,
and always returns CONTINUE.

The line is upstream's: ``cgroup=<path> total=<MB>MB pressure=<10>:<60>:<300>
swapfree=<MB>MB/<MB>MB pgscan=<n>``, with swap from ``/proc/meminfo`` SwapFree and
SwapTotal and pgscan = ``/proc/vmstat`` pgscan_kswapd + pgscan_direct (missing values
read 0). Upstream re-reads both files for every cgroup it logs; here they are read
once per tick.
"""

from __future__ import annotations

from oomd.plugin import (
    ZERO_PRESSURE,
    Action,
    CgroupPattern,
    OomdContext,
    PluginRet,
    Pressure,
    arg,
    fmt_mb,
    log,
    parse_bool,
    parse_cgroups,
    require_cgroups,
    to_float32,
)
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def should_dump(pressure: Pressure, always: bool) -> bool:
    return always or (pressure.avg10 >= 1 and pressure.avg60 > 0)


def overview_line(
    cgroup: str, current: int, pressure: Pressure, swap_free: int, swap_total: int, pgscan: int
) -> str:
    f = to_float32
    return (
        f"cgroup={cgroup} total={fmt_mb(current)}MB "
        f"pressure={f(pressure.avg10):.2f}:{f(pressure.avg60):.2f}:{f(pressure.avg300):.2f} "
        f"swapfree={fmt_mb(swap_free)}MB/{fmt_mb(swap_total)}MB pgscan={pgscan}"
    )


class DumpCgroupOverview(Action):
    name = "dump_cgroup_overview"
    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    ruleset_cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    always: bool = arg(parse_bool, default=False)

    def setup(self) -> None:
        require_cgroups(self)

    def run(self, ctx: OomdContext) -> PluginRet:
        system = ctx.system
        host: tuple[int, int, int] | None = None
        for cg in ctx.resolve(self.cgroup, self.ruleset_cgroup):
            pressure = cg.mem_pressure() or ZERO_PRESSURE
            if not should_dump(pressure, self.always):
                continue
            if host is None:
                # Host values are one snapshot per tick: looked up once, on the first
                # line (not per cgroup: 10,000 lines a tick with always=true).
                host = (
                    system.meminfo_value("SwapFree"),
                    system.meminfo_value("SwapTotal"),
                    system.vmstat_value("pgscan_kswapd") + system.vmstat_value("pgscan_direct"),
                )
            log.info(overview_line(cg.path.relative, cg.current_usage() or 0, pressure, *host))
        return PluginRet.CONTINUE

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        """How many of its cgroups a run would log a line for (``should_dump``)."""
        cgroups = ctx.resolve(self.cgroup, self.ruleset_cgroup)
        dumped = [
            cg.path.relative or "/"
            for cg in cgroups
            if should_dump(cg.mem_pressure() or ZERO_PRESSURE, self.always)
        ]
        return {
            "description": "logs one overview line per cgroup under memory pressure"
            + (" (always: every cgroup)" if self.always else ""),
            "watched": len(cgroups),
            "would_log": len(dumped),
            "would_log_cgroups": dumped[:10],
        }
