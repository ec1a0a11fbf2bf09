"""``memory_above``: fires when the largest memory usage among its cgroups has stayed
above ``threshold`` for ``duration`` seconds.

``threshold`` is a size string or a percentage of MemTotal
(:func:`oomd.engine.args.parse_size_or_percent`: ``"1.5G"``, ``"1G 128M"``, ``"80%"``,
and a bare integer is MiB). With ``threshold_anon`` the anonymous memory
(``memory.stat`` ``anon``) is compared instead, and ``threshold`` is ignored entirely,
as upstream. MemTotal is read once, at start-up, from ``/proc/meminfo`` or from
``meminfo_location`` (upstream's test hook). The root cgroup's usage is MemTotal -
MemFree.
"""

from __future__ import annotations

from collections.abc import Iterable

from oomd.plugin import (
    ArgError,
    CgroupPattern,
    Detector,
    OomdContext,
    PluginInitError,
    PluginRet,
    ThresholdTimer,
    arg,
    detector_reading,
    fmt_mb,
    log,
    parse_bool,
    parse_cgroups,
    parse_int,
    parse_size_or_percent,
    parse_string,
    require_cgroups,
)
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def largest_usage(usages: Iterable[tuple[str, int]]) -> tuple[int, str]:
    """(usage, cgroup) of the largest usage, starting from (0, ""): only a usage
    strictly larger than everything before it counts, so with no cgroup (or all at
    0) the result is 0 and no cgroup."""
    best, best_cgroup = 0, ""
    for cgroup, usage in usages:
        if usage > best:
            best, best_cgroup = usage, cgroup
    return best, best_cgroup


class MemoryAbove(Detector):
    name = "memory_above"
    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    ruleset_cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    # Parsed in setup(): a percentage needs MemTotal, and threshold is not even
    # looked at when threshold_anon is given.
    threshold: str | None = arg(parse_string)
    threshold_anon: str | None = arg(parse_string)
    duration: int = arg(parse_int, required=True)
    debug: bool = arg(parse_bool, default=False)
    meminfo_location: str | None = arg(parse_string)

    def setup(self) -> None:
        require_cgroups(self)
        where = self.meminfo_location or self.env.system.proc_root + "/meminfo"
        try:
            meminfo = self.env.system.read_meminfo(self.meminfo_location)
        except OSError as e:
            raise PluginInitError(f"Could not read meminfo {where}: {e.strerror}") from None
        if "MemTotal" not in meminfo:
            raise PluginInitError(f"meminfo does not contain MemTotal ({where})")
        self.mem_total = meminfo["MemTotal"]
        if self.threshold_anon is not None:
            arg, text, self.is_anon = "threshold_anon", self.threshold_anon, True
            if self.threshold is not None:
                self.env.notes.append(
                    f'"threshold" {self.threshold!r} is ignored: "threshold_anon" is given '
                    "(as upstream)"
                )
        elif self.threshold is not None:
            arg, text, self.is_anon = "threshold", self.threshold, False
        else:
            raise ArgError("", 'Required arg "threshold" missing (or give "threshold_anon")')
        try:
            self.threshold_bytes = parse_size_or_percent(text, self.env).resolve(self.mem_total)
        except ValueError as e:
            raise ArgError(arg, str(e)) from None
        self.timer = ThresholdTimer()

    def run(self, ctx: OomdContext) -> PluginRet:
        usages: list[tuple[str, int]] = []
        for cg in ctx.resolve(self.cgroup, self.ruleset_cgroup):
            if self.debug:
                # Upstream's line, without a separator between the two values.
                log.info(
                    f'cgroup "{cg.path.relative}" memory.current={cg.current_usage() or 0}'
                    f"memory.stat (anon)={cg.anon_usage() or 0}"
                )
            value = cg.anon_usage() if self.is_anon else cg.current_usage()
            usages.append((cg.path.relative, value or 0))
        usage, cgroup = largest_usage(usages)
        over = usage > self.threshold_bytes
        if over and self.debug:
            kind = "anon usage=" if self.is_anon else "memory usage="
            log.info(f'cgroup "{cgroup}" {kind}{usage} hit threshold={self.threshold_bytes}')
        if self.timer.update(over, ctx.now(), self.duration):
            if self.debug:
                log.info(
                    f'cgroup "{cgroup}" current memory usage {fmt_mb(usage)}MB is over the '
                    f"threshold of {fmt_mb(self.threshold_bytes)}MB for {self.duration} seconds"
                )
            return PluginRet.CONTINUE
        return PluginRet.STOP

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        cgroups = ctx.resolve(self.cgroup, self.ruleset_cgroup)
        usage, cgroup = largest_usage(
            (cg.path.relative, (cg.anon_usage() if self.is_anon else cg.current_usage()) or 0)
            for cg in cgroups
        )
        return detector_reading(
            what="anon usage" if self.is_anon else "memory usage",
            reading=usage,
            threshold=self.threshold_bytes,
            unit="bytes",
            over=usage > self.threshold_bytes,
            held=self.timer.held(ctx.now()),
            duration=self.duration,
            cgroup=cgroup or None,
            watched=len(cgroups),
        )
