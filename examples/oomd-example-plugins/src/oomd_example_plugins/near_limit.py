"""``near_memory_limit``: fires when one of its cgroups has used at least ``percent``
percent of its ``memory.max`` for ``duration`` seconds."""

from __future__ import annotations

from oomd.plugin import (
    CgroupContext,
    CgroupPattern,
    Detector,
    OomdContext,
    ThresholdTimer,
    arg,
    in_range,
    log,
    non_negative,
    parse_cgroups,
    parse_int,
    require_cgroups,
)


def limit_use(cg: CgroupContext) -> float | None:
    """``memory.current`` as a percentage of ``memory.max`` (None if unknown; a
    ``max`` limit reads as 2^63-1 bytes, so an unlimited cgroup is near 0 %)."""
    usage, limit = cg.current_usage(), cg.memory_max()
    if usage is None or not limit:
        return None
    return 100.0 * usage / limit


class NearMemoryLimit(Detector):
    name = "near_memory_limit"

    # The args, declared once each: oomd sets each parsed value (or the default) on
    # the instance before setup() runs.
    cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    ruleset_cgroup: tuple[CgroupPattern, ...] = arg(parse_cgroups, default=())
    percent: int = arg(parse_int, default=90, validate=in_range(1, 100))
    duration: int = arg(parse_int, default=0, validate=non_negative)

    def setup(self) -> None:
        require_cgroups(self)
        self.timer = ThresholdTimer()

    def detect(self, ctx: OomdContext) -> bool:
        worst: tuple[float, CgroupContext] | None = None
        for cg in ctx.resolve(self.cgroup, self.ruleset_cgroup):
            use = limit_use(cg)
            if use is not None and (worst is None or use > worst[0]):
                worst = (use, cg)
        over = worst is not None and worst[0] >= self.percent
        if not self.timer.update(over, ctx.now(), self.duration):
            return False
        assert worst is not None
        log.info(
            f"{worst[1].path.relative} is at {worst[0]:.1f}% of its memory.max "
            f"(threshold {self.percent}% for {self.duration} s)"
        )
        return True
