"""``exists``: fires when at least one of its cgroup patterns (a comma-separated list,
wildcards allowed) names an existing cgroup directory, or with ``negate`` when none
does. ``debug`` is accepted and, as upstream, has no effect. No log lines."""

from __future__ import annotations

from typing import Any, ClassVar

from oomd.plugin import (
    CGROUP_ARG,
    RULESET_CGROUP_ARG,
    Arg,
    CgroupPattern,
    Detector,
    OomdContext,
    PluginRet,
    detector_reading,
    parse_bool,
    require_cgroups,
)


def exists_fires(found: bool, negate: bool) -> bool:
    return found != negate


class Exists(Detector):
    name = "exists"
    args: ClassVar[tuple[Arg[Any], ...]] = (
        CGROUP_ARG,
        RULESET_CGROUP_ARG,
        Arg("negate", parse_bool, default=False),
        Arg("debug", parse_bool, default=False),
    )

    cgroup: tuple[CgroupPattern, ...]
    ruleset_cgroup: tuple[CgroupPattern, ...]
    negate: bool
    debug: bool

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
