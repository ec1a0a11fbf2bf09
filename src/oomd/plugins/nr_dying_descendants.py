"""``nr_dying_descendants``: fires when any of its cgroups (the root included) has a
``cgroup.stat`` ``nr_dying_descendants`` at most ``count`` (``lte``, the default) or,
with ``lte=false``, above ``count``. Cgroups without a readable ``cgroup.stat`` are
skipped; a file without the key counts 0. There is no ``negate`` arg (upstream's docs
list one; its code rejects it)."""

from __future__ import annotations

from collections.abc import Iterable

from oomd.plugin import (
    CgroupContext,
    CgroupPattern,
    Detector,
    OomdContext,
    PluginRet,
    arg,
    detector_reading,
    log,
    parse_bool,
    parse_cgroups,
    parse_unsigned_int,
    require_cgroups,
)
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def dying_matches(nr_dying: int, count: int, lte: bool) -> bool:
    return nr_dying <= count if lte else nr_dying > count


def first_match(
    cgroups: Iterable[CgroupContext], count: int, lte: bool
) -> tuple[CgroupContext | None, int | None, bool]:
    """The first cgroup whose count matches (cgroup, count, True); else the first
    readable one (cgroup, count, False); else (None, None, False)."""
    first: tuple[CgroupContext | None, int | None, bool] = (None, None, False)
    for cg in cgroups:
        nr = cg.nr_dying_descendants()
        if nr is None:
            continue
        if dying_matches(nr, count, lte):
            return cg, nr, True
        if first[0] is None:
            first = (cg, nr, False)
    return first


class NrDyingDescendants(Detector):
    name = "nr_dying_descendants"
    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    ruleset_cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    count: int = arg(parse_unsigned_int, required=True)
    lte: bool = arg(parse_bool, default=True)
    debug: bool = arg(parse_bool, default=False)

    def setup(self) -> None:
        require_cgroups(self)

    def run(self, ctx: OomdContext) -> PluginRet:
        _, nr, matched = first_match(
            ctx.resolve(self.cgroup, self.ruleset_cgroup), self.count, self.lte
        )
        if matched:
            if self.debug:
                op = " <= " if self.lte else " > "
                log.info(f"nr_dying_descendants={nr}{op}count={self.count}")
            return PluginRet.CONTINUE
        return PluginRet.STOP

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        cgroups = ctx.resolve(self.cgroup, self.ruleset_cgroup)
        cg, nr, matched = first_match(cgroups, self.count, self.lte)
        return detector_reading(
            what="nr_dying_descendants",
            reading=nr,
            threshold=self.count,
            unit="",
            over=matched,
            below=self.lte,
            cgroup=None if cg is None else cg.path.relative or "/",
            watched=len(cgroups),
        )
