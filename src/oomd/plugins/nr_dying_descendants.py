"""``nr_dying_descendants``: fires when any of its cgroups (the root included) has a
``cgroup.stat`` ``nr_dying_descendants`` at most ``count`` (``lte``, the default) or,
with ``lte=false``, above ``count``. Cgroups without a readable ``cgroup.stat`` are
skipped; a file without the key counts 0. There is no ``negate`` arg (upstream's docs
list one; its code rejects it)."""

from __future__ import annotations

from oomd.plugin import (
    CgroupPattern,
    Detector,
    OomdContext,
    PluginRet,
    arg,
    log,
    parse_bool,
    parse_cgroups,
    parse_unsigned_int,
    require_cgroups,
)


def dying_matches(nr_dying: int, count: int, lte: bool) -> bool:
    return nr_dying <= count if lte else nr_dying > count


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
        for cg in ctx.resolve(self.cgroup, self.ruleset_cgroup):
            nr = cg.nr_dying_descendants()
            if nr is not None and dying_matches(nr, self.count, self.lte):
                if self.debug:
                    op = " <= " if self.lte else " > "
                    log.info(f"nr_dying_descendants={nr}{op}count={self.count}")
                return PluginRet.CONTINUE
        return PluginRet.STOP
