"""``kill_by_io_cost``: kill the cgroup that generated the most io cost in one tick.

As upstream's ``KillIOCost-inl.h``: io cost is the dot product of a cgroup's ``io.stat``
counters (only the devices given with ``--device``) with the SSD or HDD coefficients
(``--ssd-coeffs``/``--hdd-coeffs``); the rate is its change since the previous tick,
0 without history (so every cgroup is 0 on its first tick). The prerun computes it for
every candidate each tick so the history exists when the action runs. Every candidate
is eligible; kill preferences dominate the rate.
"""

from __future__ import annotations

from collections.abc import Sequence

from oomd.plugin import (
    CgroupContext,
    KillPlugin,
    KillPreference,
    OomdContext,
    fmt_float,
    sort_with_preferences,
)
from oomd.typeshim import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from typing import Any


class IoCostView(Protocol):
    """What the ranking reads of a cgroup (a CgroupContext, or a test double)."""

    def io_cost_rate(self) -> float | None: ...
    def kill_preference(self) -> KillPreference: ...


C = TypeVar("C", bound=IoCostView)


def rank_by_io_cost(peers: Sequence[C]) -> list[C]:
    """The peer group, best victim first (a pure function of what it reads)."""
    return sort_with_preferences(peers, lambda cg: cg.io_cost_rate() or 0.0)


class KillIOCost(KillPlugin):
    name = "kill_by_io_cost"
    needs_controllers = frozenset({"io"})

    def prerun(self, ctx: OomdContext) -> None:
        self.prerun_on_cgroups(ctx, CgroupContext.io_cost_rate)

    def rank(self, ctx: OomdContext, cgroups: list[CgroupContext]) -> list[CgroupContext]:
        return rank_by_io_cost(cgroups)

    def pick_reason(
        self, ctx: OomdContext, target: CgroupContext, peers: list[CgroupContext]
    ) -> str:
        return (
            f"{self.picked(target)} "
            f"based on io cost generation at {fmt_float(target.io_cost_rate() or 0.0)}"
        )

    def rank_numbers(
        self, ctx: OomdContext, cg: CgroupContext, peers: list[CgroupContext]
    ) -> dict[str, Any]:
        return {
            "io_cost_rate": cg.io_cost_rate() or 0.0,
            "usage": cg.current_usage() or 0,
            "preference": cg.kill_preference().name,
        }
