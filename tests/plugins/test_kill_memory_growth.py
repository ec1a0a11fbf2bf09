"""kill_by_memory_size_or_growth (upstream plugins/KillMemoryGrowth-inl.h; CorePluginsTest
KillMemoryGrowthTest.*). Ranking is tested as a pure function on hand-made cgroups;
the plugin end to end on a fake tree with processes the test spawned."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from oomd.cgroup.context import KillPreference
from oomd.config.errors import ConfigError
from oomd.plugins.kill_memory_growth import Phase, growth_ranking, rank_by_memory
from tests.support.harness import Harness, plugin, ruleset
from tests.support.procs import Spawner

P, N, A = KillPreference.PREFER, KillPreference.NORMAL, KillPreference.AVOID


@dataclass
class View:
    name: str
    current: int
    average: int | None = None
    protection: int = 0
    preference: KillPreference = N

    def current_usage(self) -> int | None:
        return self.current

    def effective_usage(self) -> int | None:
        return self.current - self.protection

    def memory_growth(self) -> float | None:
        average = self.current if self.average is None else self.average
        return 0.0 if average == 0 else self.current / average

    def kill_preference(self) -> KillPreference:
        return self.preference


def names(views: list[View]) -> list[str]:
    return [v.name for v in views]


def rank(views: list[View], size: int = 50, pct: int = 80, ratio: float = 1.25) -> list[str]:
    return names(rank_by_memory(views, size, pct, ratio))


def test_kills_big_cgroup() -> None:
    """KillsBigCgroup: 60 of 100 is over 50% of the sibling total."""
    assert rank([View("c1", 60), View("c2", 20), View("c3", 20)])[0] == "c1"


def test_size_phase_ranks_by_effective_usage() -> None:
    """memory.low protection is subtracted before comparing sizes."""
    views = [View("big_protected", 60, protection=50), View("small", 55)]
    assert rank(views, size=10)[0] == "small"


def test_falls_back_to_size_without_threshold_then_growth() -> None:
    """KillsBigCgroupGrowth: with nobody over 50% and nobody growing, the largest dies;
    once one grows 4x it is picked in the growth phase."""
    views = [View("c1", 21, 20), View("c2", 20, 20), View("c3", 30, 30)]
    assert rank(views)[0] == "c3"
    views[0].average = 5  # growth 4.2; only the top P80 (c3) may be killed for growth...
    assert rank(views)[0] == "c3"
    assert rank(views, pct=20)[0] == "c1"  # ...unless the percentile admits c1


@pytest.mark.parametrize(
    ("pct", "ratio", "victim"),
    [
        (50, 1.25, "c2"),  # c2,c3 in the top 50%; c1,c2 grow >= 1.25: only c2 qualifies
        (20, 1.25, "c1"),  # everyone qualifies by size; c1 grows fastest
        (0, 0.0, "c1"),  # no restrictions at all
        (67, 1.25, "c3"),  # only c3 qualifies by size but does not grow: size fallback
        (20, 10.0, "c3"),  # nobody grows 10x: size fallback
    ],
)
def test_growth_phase_gating(pct: int, ratio: float, victim: str) -> None:
    """DoesntGrowthKillBelowUsageThreshold, with upstream's exact numbers (size
    threshold 50% of 150 = 75 is met by nobody)."""
    views = [View("c1", 40, 7), View("c2", 50, 30), View("c3", 60, 60)]
    assert rank(views, size=50, pct=pct, ratio=ratio)[0] == victim


def test_prefer_overrides_size_and_avoid_yields() -> None:
    """PreferredOverridesSize / AvoidedOverridesSize."""
    assert rank([View("big", 60), View("pref", 20, preference=P), View("x", 20)])[0] == "pref"
    assert rank([View("big", 60, preference=A), View("b", 20), View("c", 10)])[0] == "b"


def test_same_preference_everywhere_has_no_effect() -> None:
    """AvoidedNoEffect / PreferredNoEffect."""
    for pref in (P, A):
        assert rank([View("big", 60, preference=pref), View("b", 20, preference=pref)])[0] == "big"


def test_prefer_beats_size_even_in_growth_phase() -> None:
    """KillsByPreferredGrowth."""
    views = [
        View("c1", 21, 5, preference=P),
        View("c2", 99, 5, preference=P),
        View("c3", 1000, 1000),
    ]
    assert rank(views)[0] == "c2"


def test_consistent_with_preference_when_victim_is_preferred() -> None:
    """KillMemoryGrowthConsistentWithPreference: preferring the would-be victim (and
    others) never moves the choice away from it."""
    base = [View("a", 60), View("b", 30), View("c", 10)]
    assert rank(base)[0] == "a"
    for preferred in ({"a"}, {"a", "b"}, {"a", "b", "c"}):
        views = [View(v.name, v.current, preference=P if v.name in preferred else N) for v in base]
        assert rank(views)[0] == "a"


def test_ties_break_by_input_order_deterministically() -> None:
    views = [View("a", 10), View("b", 10), View("c", 10)]
    assert rank(views) == ["a", "b", "c"]


def test_phase_reported_for_logging() -> None:
    views = [View("big", 60), View("grow", 21, 5), View("rest", 19)]
    ranking = growth_ranking(views, 50, 0, 1.25)
    assert [ranking(v)[0] for v in views] == [
        Phase.SIZE_THRESHOLD,
        Phase.GROWTH,
        Phase.SIZE_NO_THRESHOLD,
    ]


def test_empty_peer_group_ranks_nothing() -> None:
    assert rank([]) == []


# --- end to end through the engine --------------------------------------------------


def load(h: Harness, dry_run: bool = False, **args: object) -> None:
    h.load(
        {
            "rulesets": [
                ruleset(
                    "protect",
                    [
                        (
                            "hot",
                            [
                                plugin(
                                    "pressure_above",
                                    cgroup="workload.slice",
                                    resource="memory",
                                    threshold=10,
                                    duration=0,
                                )
                            ],
                        )
                    ],
                    [plugin("kill_by_memory_size_or_growth", cgroup="workload.slice/*", **args)],
                )
            ]
        },
        dry_run=dry_run,
    )


def test_kills_exactly_the_biggest_cgroups_processes(
    harness: Harness, spawner: Spawner, oolog: Path
) -> None:
    """KillsBigCgroup end to end: only the victim's pids die; kill line, xattrs and
    oomd.kills are as upstream."""
    t = harness.tree
    small, big1, big2 = spawner.sleeper(), spawner.sleeper(), spawner.sleeper()
    t.cgroup("workload.slice", pressure=(50, 40, 30))
    t.cgroup("workload.slice/small.service", current=100 << 20, procs=[small.pid], stat={"anon": 1})
    t.cgroup(
        "workload.slice/big.service",
        current=300 << 20,
        procs=[big1.pid, big2.pid],
        stat={"anon": 5},
        pressure=(12.5, 7.25, 1),
    )
    load(harness)
    harness.tick()
    assert spawner.is_dead(big1) and spawner.is_dead(big2)
    assert not spawner.is_dead(small, timeout=0.2)
    assert harness.kills == [
        "oomd kill: 12.50 7.25 1.00 workload.slice/big.service 314572800 "
        "ruleset:[protect] detectorgroup:[hot] killer:kill_by_memory_size_or_growth v2"
    ]
    assert t.get_xattr("workload.slice/big.service", "trusted.oomd_ooms") == b"1"
    assert t.get_xattr("workload.slice/big.service", "trusted.oomd_kill") == b"2"
    uuid = t.get_xattr("workload.slice/big.service", "trusted.oomd_kill_uuid")
    assert uuid is not None and int(uuid, 16) > 0
    assert t.get_xattr("workload.slice/small.service", "trusted.oomd_ooms") is None
    assert harness.stats.get("oomd.kills") == 1
    text = oolog.read_text()
    assert (
        'Picked "workload.slice/big.service" (300MB) based on size > 50% of sibling total 400MB '
        "with kill preference NORMAL" in text
    )


def test_dry_run_kills_nothing_but_logs_dry_kill_line(
    harness: Harness, spawner: Spawner, oolog: Path
) -> None:
    """DoesntKillBigCgroupInDry: no signal, no xattr, no stat; the kmsg line says (dry)."""
    t = harness.tree
    victim = spawner.sleeper()
    t.cgroup("workload.slice", pressure=(50, 40, 30))
    t.cgroup("workload.slice/big.service", current=300 << 20, procs=[victim.pid], stat={"anon": 1})
    load(harness, dry="true")
    harness.tick()
    assert not spawner.is_dead(victim, timeout=0.2)
    assert harness.kills[0].endswith("killer:(dry)kill_by_memory_size_or_growth v2")
    assert t.get_xattr("workload.slice/big.service", "trusted.oomd_ooms") is None
    assert harness.stats.get("oomd.kills") == 0
    assert "OOMD: In dry-run mode; would have tried to kill " in oolog.read_text()


def test_global_dry_run_flag_acts_like_dry_true(harness: Harness, spawner: Spawner) -> None:
    t = harness.tree
    victim = spawner.sleeper()
    t.cgroup("workload.slice", pressure=(50, 40, 30))
    t.cgroup("workload.slice/big.service", current=300 << 20, procs=[victim.pid], stat={"anon": 1})
    load(harness, dry_run=True)
    harness.tick()
    assert not spawner.is_dead(victim, timeout=0.2)
    assert "killer:(dry)" in harness.kills[0]


def test_growth_average_is_kept_across_ticks_by_prerun(harness: Harness, spawner: Spawner) -> None:
    """The growth phase needs history: prerun computes the average every tick, so a
    cgroup that jumps from 10 to 40 MiB shows growth ~2.3 (not 4.0 from a cold start)."""
    t = harness.tree
    grower, steady = spawner.sleeper(), spawner.sleeper()
    t.cgroup("workload.slice", pressure=(0, 0, 0))
    t.cgroup("workload.slice/grower", current=10 << 20, procs=[grower.pid], stat={"anon": 1})
    t.cgroup("workload.slice/steady", current=45 << 20, procs=[steady.pid], stat={"anon": 1})
    load(harness, size_threshold=90, growing_size_percentile=0)
    for _ in range(20):
        harness.tick()  # no pressure: nothing fires, but prerun keeps averages
    assert harness.kills == []
    t.set_current("workload.slice/grower", 40 << 20)
    t.set_pressure("workload.slice", 50, 50, 50)
    harness.tick()
    assert spawner.is_dead(grower)
    assert not spawner.is_dead(steady, timeout=0.2)


def test_post_action_delay_arg_overrides_the_ruleset_pause(
    harness: Harness, spawner: Spawner
) -> None:
    t = harness.tree
    first, second = spawner.sleeper(), spawner.sleeper()
    t.cgroup("workload.slice", pressure=(50, 40, 30))
    t.cgroup("workload.slice/a", current=300 << 20, procs=[first.pid], stat={"anon": 1})
    t.cgroup("workload.slice/b", current=200 << 20, procs=[second.pid], stat={"anon": 1})
    load(harness, post_action_delay=3)
    harness.tick()
    assert spawner.is_dead(first)
    t.cgroup("workload.slice/a", current=0, procs=[], populated=False)
    harness.tick(2)  # still paused at +2 s
    assert len(harness.kills) == 1
    harness.tick()  # +3 s: pause over
    assert spawner.is_dead(second)
    assert len(harness.kills) == 2


def test_always_continue_runs_the_rest_of_the_chain(harness: Harness, spawner: Spawner) -> None:
    t = harness.tree
    victim = spawner.sleeper()
    t.cgroup("workload.slice", pressure=(50, 40, 30))
    t.cgroup("workload.slice/a", current=300 << 20, procs=[victim.pid], stat={"anon": 1})
    harness.load(
        {
            "rulesets": [
                ruleset(
                    "r",
                    [
                        (
                            "hot",
                            [
                                plugin(
                                    "pressure_above",
                                    cgroup="workload.slice",
                                    resource="memory",
                                    threshold=10,
                                    duration=0,
                                )
                            ],
                        )
                    ],
                    [
                        plugin(
                            "kill_by_memory_size_or_growth",
                            cgroup="workload.slice/*",
                            always_continue=True,
                            dry=True,
                        ),
                        plugin(
                            "kill_by_memory_size_or_growth", cgroup="workload.slice/*", dry=True
                        ),
                    ],
                )
            ]
        }
    )
    harness.tick()
    assert len(harness.kills) == 2


@pytest.mark.parametrize("value", ["100", "-1", "abc"])
def test_growing_size_percentile_must_be_in_0_to_100(harness: Harness, value: str) -> None:
    """InvalidArgs: 100 is rejected (HEAD), 99 accepted."""
    harness.tree.cgroup("workload.slice")
    with pytest.raises(ConfigError, match="growing_size_percentile"):
        load(harness, growing_size_percentile=value)
    load(harness, growing_size_percentile="99")


def test_min_growth_ratio_keeps_its_fraction(
    harness: Harness, oolog: Path, spawner: Spawner
) -> None:
    """Deliberate difference: upstream parses min_growth_ratio as an int ("1.5" -> 1)."""
    t = harness.tree
    a, b = spawner.sleeper(), spawner.sleeper()
    t.cgroup("workload.slice", pressure=(50, 40, 30))
    # Cold start: both grow 4.0. a is bigger but not over 90% of the total.
    t.cgroup("workload.slice/a", current=60 << 20, procs=[a.pid], stat={"anon": 1})
    t.cgroup("workload.slice/b", current=50 << 20, procs=[b.pid], stat={"anon": 1})
    load(harness, size_threshold=90, growing_size_percentile=0, min_growth_ratio="1.5", dry=True)
    harness.tick()
    assert (
        "(min growth rate 1.50) among P0 largest, with kill preference NORMAL" in oolog.read_text()
    )


def test_growth_percentile_index_rounds_up() -> None:
    """ceil(n * (100 - pct) / 100) - 1: with 6 peers and P80 the two largest (not just
    one) may be killed for growth."""
    views = [
        View("a", 60),
        View("b", 50, 10),
        View("c", 10),
        View("d", 10),
        View("e", 10),
        View("f", 10),
    ]
    ranking = growth_ranking(views, 90, 80, 1.25)
    assert ranking.min_effective_usage == 50
    assert rank(views, size=90, pct=80)[0] == "b"
