"""``kill_by_pressure``: kill the cgroup generating the most memory or io pressure.

As upstream's ``KillPressure-inl.h``: every candidate is eligible; the key is the
``full`` PSI line's ``avg10 / 2 + avg60 / 2`` (absent = 0) computed in single
precision and **truncated to an integer**, so 10.3 and 10.9 tie (ties then go to the
smallest path, the kill core's rule). Kill preferences dominate the key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from oomd.plugin import (
    CgroupContext,
    KillPlugin,
    KillPreference,
    OomdContext,
    Pressure,
    arg,
    fmt_float,
    parse_resource,
    sort_with_preferences,
)
from oomd.plugin import to_float32 as f32
from oomd.typeshim import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from typing import Any


class PressureView(Protocol):
    """What the ranking reads of a cgroup (a CgroupContext, or a test double)."""

    def pressure(self, resource: str, full: bool = True) -> Pressure | None: ...
    def kill_preference(self) -> KillPreference: ...


P = TypeVar("P", bound=PressureView)


def pressure_key(pressure: Pressure | None) -> int:
    """``int(avg10 / 2 + avg60 / 2)`` in C ``float`` arithmetic; 0 when absent."""
    if pressure is None:
        return 0
    value = f32(f32(f32(pressure.avg10) / 2) + f32(f32(pressure.avg60) / 2))
    return math.trunc(value) if math.isfinite(value) else 0


def rank_by_pressure(peers: Sequence[P], resource: str) -> list[P]:
    """The peer group, best victim first (a pure function of what it reads)."""
    return sort_with_preferences(peers, lambda cg: pressure_key(cg.pressure(resource)))


class KillPressure(KillPlugin):
    name = "kill_by_pressure"
    resource: str = arg(parse_resource, required=True)

    def rank(self, ctx: OomdContext, cgroups: list[CgroupContext]) -> list[CgroupContext]:
        return rank_by_pressure(cgroups, self.resource)

    def pick_reason(
        self, ctx: OomdContext, target: CgroupContext, peers: list[CgroupContext]
    ) -> str:
        pressure = target.pressure(self.resource)
        avg10 = f32(pressure.avg10) if pressure else 0.0
        avg60 = f32(pressure.avg60) if pressure else 0.0
        return (
            f"{self.picked(target)} "
            f"based on pressure generation at 10s={fmt_float(avg10)} 60s={fmt_float(avg60)}"
        )

    def rank_numbers(
        self, ctx: OomdContext, cg: CgroupContext, peers: list[CgroupContext]
    ) -> dict[str, Any]:
        pressure = cg.pressure(self.resource)
        return {
            "pressure_key": pressure_key(pressure),
            "avg10": f32(pressure.avg10) if pressure else 0.0,
            "avg60": f32(pressure.avg60) if pressure else 0.0,
            "usage": cg.current_usage() or 0,
            "preference": cg.kill_preference().name,
        }
