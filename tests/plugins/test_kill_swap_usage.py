"""kill_by_swap_usage (upstream plugins/KillSwapUsage-inl.h; CorePluginsTest
KillSwapUsageTest.*). Ranking is tested as a pure function on hand-made cgroups; the
plugin end to end on a fake tree with processes the test spawned."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oomd.cgroup.context import KillPreference
from oomd.config.errors import ConfigError
from oomd.plugins.kill_swap_usage import KillSwapUsage, rank_by_swap, swap_excess, swap_ratio
from tests.support.harness import Harness, plugin, ruleset
from tests.support.procs import Spawner

P, N, A = KillPreference.PREFER, KillPreference.NORMAL, KillPreference.AVOID
MB = 1 << 20


@dataclass
class View:
    name: str
    swap: int | None
    protection: int | None = None
    preference: KillPreference = N

    def swap_usage(self) -> int | None:
        return self.swap

    def memory_protection(self) -> int | None:
        return self.protection

    def kill_preference(self) -> KillPreference:
        return self.preference


def rank(
    views: list[View], threshold: int = 1, biased: bool = False, ratio: float = 0.0
) -> list[str]:
    return [v.name for v in rank_by_swap(views, threshold, biased, ratio)]


def test_kills_big_swap_cgroup() -> None:
    """KillsBigSwapCgroup / KillsBigSwapCgroupMultiCgroup."""
    views = [View("c1", 20), View("c2", 60), View("c3", 40)]
    assert rank(views) == ["c2", "c3", "c1"]
    assert rank([*views, View("sibling", 70)])[0] == "sibling"


def test_no_swap_means_no_candidate() -> None:
    """DoesntKillNoSwap / BiasedSwapKillZeroSwapTest: absent or zero swap never
    qualifies, biased or not."""
    views = [View("none", None), View("zero", 0, protection=1500)]
    assert rank(views) == []
    assert rank(views, biased=True, ratio=0.25) == []


def test_threshold_is_strictly_greater() -> None:
    """HEAD filters swap > threshold (0.5.0: >=); the default threshold of 1 byte
    therefore needs 2 bytes of swap."""
    assert rank([View("one", 1), View("two", 2)]) == ["two"]
    assert rank([View("at", 100 * MB), View("above", 100 * MB + 1)], threshold=100 * MB) == [
        "above"
    ]


def test_percent_threshold_filters_candidates() -> None:
    """ThresholdTest: 20% of SwapTotal."""
    threshold = 20 * (100 << 10) // 100  # 20% of a 100 KiB SwapTotal
    views = [View("c1", 1), View("c2", 2), View("c3", 3)]
    assert rank(views, threshold) == []
    views = [View("c1", 20 << 10), View("c2", 60 << 10), View("c3", 40 << 10)]
    assert rank(views, threshold) == ["c2", "c3"]


def test_biased_ranks_by_swap_beyond_the_protected_share() -> None:
    """BiasedSwapKillTest: SwapTotal 25 kB / MemTotal 100 kB = 0.25; excess = swap -
    0.25 * protection: 1525, 1500, 0."""
    ratio = swap_ratio(25 << 10, 100 << 10)
    assert ratio == 0.25
    views = [View("c1", 1900, 1500), View("c2", 2000, 2000), View("c3", 1500, 6000)]
    assert [swap_excess(v, ratio) for v in views] == [1525, 1500, 0]
    assert rank(views, biased=True, ratio=ratio) == ["c1", "c2", "c3"]
    # Unbiased, the biggest swap user would have been c2.
    assert rank(views)[0] == "c2"


def test_biased_still_kills_when_nobody_exceeds_its_share() -> None:
    """BiasedSwapKillNoSwapExcessTest: every excess is 0, yet swap users remain
    candidates (ties go to the first path)."""
    views = [View("c1", 350, 1500), View("c2", 350, 2000), View("c3", 1000, 6000)]
    assert rank(views, biased=True, ratio=0.25) == ["c1", "c2", "c3"]


def test_biased_without_known_protection_uses_plain_swap() -> None:
    assert swap_excess(View("x", 500, None), 0.5) == 500
    assert swap_excess(View("x", None, 100), 0.5) == 0


def test_swap_ratio_is_single_precision_and_zero_without_memtotal() -> None:
    assert swap_ratio(1, 3) == pytest.approx(1 / 3, rel=1e-7)
    assert swap_ratio(1, 3) != 1 / 3  # a C float, not a double
    assert swap_ratio(8 << 30, 0) == 0.0
    # 64-bit totals (upstream's 32-bit ints would make 8 GiB / 16 GiB = 0 / 0).
    assert swap_ratio(8 << 30, 16 << 30) == 0.5


def test_preferences_dominate_swap() -> None:
    views = [View("big", 600, preference=A), View("mid", 300), View("small", 100, preference=P)]
    assert rank(views) == ["small", "mid", "big"]


# --- end to end through the engine --------------------------------------------------


def load(h: Harness, **args: Any) -> KillSwapUsage:
    h.load(
        {
            "rulesets": [
                ruleset(
                    "swap",
                    [("hot", [plugin("continue")])],
                    [plugin("kill_by_swap_usage", cgroup="workload.slice/*", **args)],
                )
            ]
        }
    )
    assert h.engine is not None
    action = h.engine.rulesets[0].actions[0]
    assert isinstance(action, KillSwapUsage)
    return action


def test_kills_exactly_the_biggest_swap_users_processes(
    harness: Harness, spawner: Spawner, oolog: Path
) -> None:
    t = harness.tree
    small, big = spawner.sleeper(), spawner.sleeper()
    t.cgroup(
        "workload.slice/a", current=300 * MB, swap=20 * MB, stat={"anon": 1}, procs=[small.pid]
    )
    t.cgroup("workload.slice/b", current=100 * MB, swap=60 * MB, stat={"anon": 1}, procs=[big.pid])
    load(harness)
    harness.tick()
    assert spawner.is_dead(big)
    assert not spawner.is_dead(small, timeout=0.2)
    assert harness.kills == [
        "oomd kill: 0.00 0.00 0.00 workload.slice/b 104857600 ruleset:[swap] "
        "detectorgroup:[hot] killer:kill_by_swap_usage v2"
    ]
    assert 'Picked "workload.slice/b" (100MB) based on swap usage at 60MB' in oolog.read_text()


def test_dry_run_kills_nothing(harness: Harness, spawner: Spawner) -> None:
    """DoesntKillBigSwapCgroupDry."""
    victim = spawner.sleeper()
    harness.tree.cgroup("workload.slice/b", swap=60 * MB, stat={"anon": 1}, procs=[victim.pid])
    load(harness, dry=True)
    harness.tick()
    assert not spawner.is_dead(victim, timeout=0.2)
    assert harness.kills[0].endswith("killer:(dry)kill_by_swap_usage v2")


def test_nothing_to_kill_continues(harness: Harness) -> None:
    harness.tree.cgroup("workload.slice/a", swap=0, stat={"anon": 1})
    action = load(harness, dry=True)
    harness.ctx.refresh()
    assert action.run(harness.ctx).value == "CONTINUE"
    assert harness.kills == []


def test_percent_threshold_uses_the_full_64_bit_swap_total(harness: Harness) -> None:
    """Deliberate fix: upstream reads SwapTotal into an int, so 4 GiB of swap reads as
    0 and "10%" would let any swap user qualify. Here 10% of 4 GiB is 409.6 MiB."""
    harness.proc.meminfo(total=16 << 30, swap_total=4 << 30, swap_free=2 << 30)
    harness.tree.cgroup("workload.slice/below", swap=400 * MB, stat={"anon": 1})
    harness.tree.cgroup("workload.slice/above", swap=410 * MB, stat={"anon": 1}, procs=[])
    action = load(harness, threshold="10%", dry=True)
    assert action.threshold_bytes == 429496729
    harness.tick()
    assert [line.split()[5] for line in harness.kills] == ["workload.slice/above"]


def test_size_and_bare_mib_thresholds(harness: Harness) -> None:
    harness.tree.cgroup("workload.slice/a", swap=1)
    assert load(harness, threshold="1.5G").threshold_bytes == 1610612736
    assert load(harness, threshold="100").threshold_bytes == 100 * MB
    assert load(harness, threshold=100).threshold_bytes == 100 * MB
    assert load(harness).threshold_bytes == 1


def test_meminfo_location_overrides_proc(harness: Harness, tmp_path: Path) -> None:
    """Upstream's test hook: SwapTotal and MemTotal come from this file."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("SwapTotal:\t25 kB\nMemTotal:\t100 kB\n")
    harness.tree.cgroup("workload.slice/a", swap=1)
    action = load(harness, meminfo_location=str(meminfo), threshold="20%", biased_swap_kill=True)
    assert action.threshold_bytes == 5 << 10
    assert action.ratio == 0.25
    # An unreadable file means a SwapTotal of 0, as upstream (not an error).
    action = load(harness, meminfo_location=str(tmp_path / "missing"), threshold="20%")
    assert action.threshold_bytes == 0


@pytest.mark.parametrize("value", ["abc", "101%", "5%z", "1gb"])
def test_bad_threshold_is_a_config_error(harness: Harness, value: str) -> None:
    harness.tree.cgroup("workload.slice/a")
    with pytest.raises(ConfigError, match="threshold"):
        load(harness, threshold=value)


def test_biased_ranking_end_to_end_uses_memory_protection(harness: Harness, oolog: Path) -> None:
    """SwapTotal/MemTotal = 0.25; a is protected by 400 MB of memory.low, so 100 MB of
    its 150 MB of swap is its share and 50 MB the excess; b (60 MB, unprotected) wins."""
    harness.proc.meminfo(total=1 << 30, swap_total=256 << 20, swap_free=0)
    harness.tree.cgroup("workload.slice", current=1 << 30, low=1 << 30)
    harness.tree.cgroup(
        "workload.slice/a", current=400 * MB, low=400 * MB, swap=150 * MB, stat={"anon": 1}
    )
    harness.tree.cgroup("workload.slice/b", current=10 * MB, swap=60 * MB, stat={"anon": 1})
    load(harness, biased_swap_kill=True, dry=True)
    harness.tick()
    assert [line.split()[5] for line in harness.kills] == ["workload.slice/b"]
    assert (
        'Picked "workload.slice/b" (10MB) based on swap usage at 60MB exceeding swapLow '
        "value by 60MB" in oolog.read_text()
    )
    load(harness, dry=True)
    harness.tick()
    assert [line.split()[5] for line in harness.kills][-1] == "workload.slice/a"
