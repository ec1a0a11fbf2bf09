"""``kill_by_process_count``: kill the cgroup with the most processes (a fork bomb's).

A kill plugin supplies only its ranking and its "Picked" log line; oomd's kill core
does the rest (recursion, prekill hooks, dry runs, xattrs, the kill line, stats)."""

from __future__ import annotations

from oomd.plugin import (
    CgroupContext,
    KillPlugin,
    OomdContext,
    arg,
    parse_int,
    positive,
    sort_with_preferences,
)


def process_count(cg: CgroupContext) -> int:
    """Processes listed in the cgroup's own ``cgroup.procs`` (0 when unreadable)."""
    return len(cg.pids() or ())


class KillByProcessCount(KillPlugin):
    name = "kill_by_process_count"
    min_processes: int = arg(parse_int, default=1, validate=positive)

    def rank(self, ctx: OomdContext, cgroups: list[CgroupContext]) -> list[CgroupContext]:
        eligible = [cg for cg in cgroups if process_count(cg) >= self.min_processes]
        return sort_with_preferences(eligible, process_count)

    def pick_reason(
        self, ctx: OomdContext, target: CgroupContext, peers: list[CgroupContext]
    ) -> str:
        return f"{self.picked(target)} based on its {process_count(target)} processes"
