"""``exists``: fires when at least one of its cgroup patterns (a comma-separated list,
wildcards allowed) names an existing cgroup directory, or with ``negate`` when none
does. ``debug`` is accepted and, as upstream, has no effect. No log lines."""

from __future__ import annotations

from oomd.plugin import (
    CgroupPattern,
    Detector,
    OomdContext,
    PluginRet,
    arg,
    detector_reading,
    parse_bool,
    parse_cgroups,
    require_cgroups,
)
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


def exists_fires(found: bool, negate: bool) -> bool:
    return found != negate


class Exists(Detector):
    name = "exists"
    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    ruleset_cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    negate: bool = arg(parse_bool, default=False)
    debug: bool = arg(parse_bool, default=False)

    def setup(self) -> None:
        require_cgroups(self)

    def run(self, ctx: OomdContext) -> PluginRet:
        found = bool(ctx.resolve(self.cgroup, self.ruleset_cgroup))
        return PluginRet.CONTINUE if exists_fires(found, self.negate) else PluginRet.STOP

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        found = len(ctx.resolve(self.cgroup, self.ruleset_cgroup))
        return detector_reading(
            what="matching cgroups" + (" (negated)" if self.negate else ""),
            reading=found,
            threshold=None,
            unit="",
            over=exists_fires(bool(found), self.negate),
        )
