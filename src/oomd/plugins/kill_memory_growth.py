"""``kill_by_memory_size_or_growth``: kill the biggest cgroup, or the fastest growing.

Ranking, per peer group (the resolved candidates, or one level of siblings when
recursive), in three phases as upstream's ``KillMemoryGrowth-inl.h``:

1. SIZE: cgroups using at least ``size_threshold``% of the group's total memory, by
   effective usage (usage minus memory.low/min protection);
2. GROWTH: cgroups among the top ``100 - growing_size_percentile``% by effective usage
   whose usage/average ratio is at least ``min_growth_ratio``, by growth;
3. SIZE_NO_THRESHOLD: everyone else, by effective usage.

Kill preference xattrs dominate the phases.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from enum import Enum

from oomd.plugin import (
    ArgError,
    CgroupContext,
    KillPlugin,
    KillPreference,
    OomdContext,
    arg,
    fmt_mb,
    parse_float,
    parse_int,
    parse_unsigned_int,
    sort_with_preferences,
    to_float32,
)
from oomd.typeshim import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from typing import Any


class Phase(Enum):
    SIZE_THRESHOLD = 1
    GROWTH = 2
    SIZE_NO_THRESHOLD = 3


class MemoryView(Protocol):
    """What the ranking reads of a cgroup (a CgroupContext, or a test double)."""

    def current_usage(self) -> int | None: ...
    def effective_usage(self) -> int | None: ...
    def memory_growth(self) -> float | None: ...
    def kill_preference(self) -> KillPreference: ...


M = TypeVar("M", bound=MemoryView)


RankKey = tuple[int, float, int]

#: While ``explain`` runs: each peer group's ranking thresholds, by the group's id (the
#: list is kept with it, so the id cannot be reused). ``explain`` asks for the same
#: group's thresholds once per candidate shown (each a sum and a sort of the group);
#: nothing else sees this memo, and it is dropped when ``explain`` returns.
_EXPLAIN_MEMO: ContextVar[dict[int, tuple[Sequence[Any], GrowthRanking]] | None] = ContextVar(
    "kill_memory_growth_explain_memo", default=None
)


class GrowthRanking:
    """Thresholds computed once per peer group; ``__call__`` ranks one member."""

    __slots__ = ("min_effective_usage", "min_growth_ratio", "size_threshold_bytes")

    def __init__(
        self, size_threshold_bytes: int, min_effective_usage: int, min_growth_ratio: float
    ) -> None:
        self.size_threshold_bytes = size_threshold_bytes
        self.min_effective_usage = min_effective_usage
        self.min_growth_ratio = min_growth_ratio

    def __call__(self, cg: MemoryView) -> tuple[Phase, RankKey]:
        current = cg.current_usage() or 0
        effective = cg.effective_usage() or 0
        # Single precision, as upstream's ``float growth_ratio``.
        growth = to_float32(cg.memory_growth() or 0.0)
        size_ok = current >= self.size_threshold_bytes
        growth_ok = growth >= self.min_growth_ratio and effective >= self.min_effective_usage
        phase = (
            Phase.SIZE_THRESHOLD
            if size_ok
            else Phase.GROWTH
            if growth_ok
            else Phase.SIZE_NO_THRESHOLD
        )
        # Tuples compare lexicographically and ineligible phases score 0, so every
        # SIZE cgroup outranks every GROWTH cgroup, which outranks the rest.
        return phase, (effective if size_ok else 0, growth if growth_ok else 0.0, effective)


def growth_ranking(
    peers: Sequence[MemoryView],
    size_threshold: int,
    growing_size_percentile: int,
    min_growth_ratio: float,
) -> GrowthRanking:
    total = sum(cg.current_usage() or 0 for cg in peers)
    size_threshold_bytes = int(total * (size_threshold / 100))
    min_effective = 0
    if peers and growing_size_percentile > 0:
        # Only the top (100 - percentile)% by effective usage may be killed for growth.
        nth = math.ceil(len(peers) * (100 - growing_size_percentile) / 100) - 1
        effective = sorted((cg.effective_usage() or 0 for cg in peers), reverse=True)
        min_effective = effective[nth]
    return GrowthRanking(size_threshold_bytes, min_effective, min_growth_ratio)


def rank_by_memory(
    peers: Sequence[M], size_threshold: int, growing_size_percentile: int, min_growth_ratio: float
) -> list[M]:
    """The peer group, best victim first (a pure function of what it reads)."""
    ranking = growth_ranking(peers, size_threshold, growing_size_percentile, min_growth_ratio)
    return sort_with_preferences(peers, lambda cg: ranking(cg)[1])


def _parse_percentile(value: str, env: Any) -> int:
    number = parse_int(value, env)
    if not 0 <= number < 100:
        raise ValueError("growing_size_percentile must be in range [0, 100)")
    return number


class KillMemoryGrowth(KillPlugin):
    name = "kill_by_memory_size_or_growth"
    needs_controllers = frozenset({"memory"})
    size_threshold: int = arg(parse_unsigned_int, default=50)
    growing_size_percentile: int = arg(_parse_percentile, default=80)
    min_growth_ratio: float = arg(parse_float, default=1.25)

    def setup(self) -> None:
        super().setup()
        # Upstream parses min_growth_ratio as an integer ("1.5" becomes 1); we keep the
        # fraction the operator wrote (docs/compatibility.md).
        if not math.isfinite(self.min_growth_ratio) or self.min_growth_ratio < 0:
            raise ArgError(
                "min_growth_ratio", f"{self.min_growth_ratio} must be a non-negative number"
            )

    def prerun(self, ctx: OomdContext) -> None:
        # The growth average only has history if it is computed every tick.
        self.prerun_on_cgroups(ctx, CgroupContext.average_usage)

    def _ranking(
        self, peers: Sequence[CgroupContext]
    ) -> Callable[[CgroupContext], tuple[Phase, RankKey]]:
        memo = _EXPLAIN_MEMO.get()
        if memo is not None and (found := memo.get(id(peers))) is not None:
            return found[1]
        ranking = growth_ranking(
            peers, self.size_threshold, self.growing_size_percentile, self.min_growth_ratio
        )
        if memo is not None:
            memo[id(peers)] = (peers, ranking)
        return ranking

    def explain(self, ctx: OomdContext, top: int = 3) -> dict[str, Any]:
        token = _EXPLAIN_MEMO.set({})  # explain reads, never mutates, its peer lists
        try:
            return super().explain(ctx, top)
        finally:
            _EXPLAIN_MEMO.reset(token)

    def rank(self, ctx: OomdContext, cgroups: list[CgroupContext]) -> list[CgroupContext]:
        return rank_by_memory(
            cgroups, self.size_threshold, self.growing_size_percentile, self.min_growth_ratio
        )

    def pick_reason(
        self, ctx: OomdContext, target: CgroupContext, peers: list[CgroupContext]
    ) -> str:
        phase, _ = self._ranking(peers)(target)
        preference = target.kill_preference().name
        head = self.picked(target)
        if phase is Phase.SIZE_THRESHOLD:
            total = fmt_mb(sum(cg.current_usage() or 0 for cg in peers))
            return (
                f"{head} based on size > {self.size_threshold}% of sibling total {total}MB "
                f"with kill preference {preference}"
            )
        if phase is Phase.GROWTH:
            return (
                f"{head} based on growth rate {target.memory_growth() or 0:.2f} "
                f"(min growth rate {self.min_growth_ratio:.2f}) among P{self.growing_size_percentile} "
                f"largest, with kill preference {preference}"
            )
        return (
            f"{head} based on effective usage of {target.effective_usage() or 0}MB "
            f"with kill preference {preference}"
        )

    def rank_numbers(
        self, ctx: OomdContext, cg: CgroupContext, peers: list[CgroupContext]
    ) -> dict[str, Any]:
        phase, _ = self._ranking(peers)(cg)
        return {
            "phase": phase.name.lower(),
            "usage": cg.current_usage() or 0,
            "protection": cg.memory_protection() or 0,
            "effective_usage": cg.effective_usage() or 0,
            "growth": to_float32(cg.memory_growth() or 0.0),
            "preference": cg.kill_preference().name,
        }
