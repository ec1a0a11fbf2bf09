"""``kill_by_pg_scan``: kill the cgroup whose page scanning grew the most in one tick.

As upstream's ``KillPgScan-inl.h`` (HEAD): a two-tick kill. Each run first reads
``memory.stat`` ``pgscan`` of every candidate (and, when recursive, every descendant
down to a ``memory.oom.group`` cgroup); if it did not also collect on the previous
tick, it returns ASYNC_PAUSED, so the first firing only collects and the engine resumes
this action on the next tick, which kills. The rate is the change of ``pgscan`` since
the previous tick. Only candidates with a rate above 0 are eligible (0.5.0 had no such
filter and could kill a cgroup that scanned nothing); kill preferences dominate the
rate.

The "couldn't read pgscan data" remark is logged once per ranking (upstream repeats it
once per remaining candidate, a misplaced check).
"""

from __future__ import annotations

from collections.abc import Sequence

from oomd.plugin import (
    CgroupContext,
    KillPlugin,
    KillPreference,
    OomdContext,
    PluginRet,
    log,
    sort_with_preferences,
)
from oomd.typeshim import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from typing import Any


class PgScanView(Protocol):
    """What the ranking reads of a cgroup (a CgroupContext, or a test double)."""

    def pg_scan_rate(self) -> int | None: ...
    def kill_preference(self) -> KillPreference: ...


G = TypeVar("G", bound=PgScanView)


def rank_by_pg_scan(peers: Sequence[G]) -> list[G]:
    """Cgroups that scanned pages since the previous tick, best victim first (a pure
    function of what it reads)."""
    eligible = [cg for cg in peers if (cg.pg_scan_rate() or 0) > 0]
    return sort_with_preferences(eligible, lambda cg: cg.pg_scan_rate() or 0)


class KillPgScan(KillPlugin):
    name = "kill_by_pg_scan"
    needs_controllers = frozenset({"memory"})

    #: The tick on which pgscan was last collected (None: never).
    last_collected: int | None = None

    def run(self, ctx: OomdContext) -> PluginRet:
        has_previous = self.last_collected is not None and self.last_collected == ctx.tick - 1
        self.prerun_on_cgroups(ctx, CgroupContext.pg_scan_rate)
        self.last_collected = ctx.tick
        if not has_previous:
            # Wait for a second tick of data to compare with.
            return PluginRet.ASYNC_PAUSED
        return super().run(ctx)

    def rank(self, ctx: OomdContext, cgroups: list[CgroupContext]) -> list[CgroupContext]:
        missing = [cg for cg in cgroups if cg.pg_scan_rate() is None]
        if missing:
            invalid = sum(1 for cg in missing if not cg.is_valid())
            text = f"couldn't read pgscan data in {len(missing)}/{len(cgroups)} cgroups"
            if invalid:
                text += f" where {len(cgroups) - invalid}/{len(cgroups)} are still valid"
            log.info(text)
        return rank_by_pg_scan(cgroups)

    def pick_reason(
        self, ctx: OomdContext, target: CgroupContext, peers: list[CgroupContext]
    ) -> str:
        return (
            f"{self.picked(target)} "
            f"based on pg scan rate at {target.pg_scan_rate() or 0} "
            f"with kill preference {target.kill_preference().name}"
        )

    def rank_numbers(
        self, ctx: OomdContext, cg: CgroupContext, peers: list[CgroupContext]
    ) -> dict[str, Any]:
        return {
            "pg_scan_rate": cg.pg_scan_rate() or 0,
            "usage": cg.current_usage() or 0,
            "preference": cg.kill_preference().name,
        }
