"""kill_by_io_cost (upstream plugins/KillIOCost-inl.h; CorePluginsTest KillIOCostTest.*).
Ranking is tested as a pure function on hand-made cgroups; the plugin end to end on a
fake tree with io.stat counters that grow between ticks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oomd.cgroup.context import (
    CgroupContext,
    ContextParams,
    KillPreference,
)
from oomd.cgroup.iocost import DeviceType, IoCostCoeffs
from oomd.plugins.kill_io_cost import KillIOCost, rank_by_io_cost
from tests.support.harness import Harness, plugin, ruleset
from tests.support.procs import Spawner

P, N, A = KillPreference.PREFER, KillPreference.NORMAL, KillPreference.AVOID


@dataclass
class View:
    name: str
    rate: float | None
    preference: KillPreference = N

    def io_cost_rate(self) -> float | None:
        return self.rate

    def kill_preference(self) -> KillPreference:
        return self.preference


def rank(views: list[View]) -> list[str]:
    return [v.name for v in rank_by_io_cost(views)]


def test_highest_io_cost_rate_first() -> None:
    """KillsHighestIOCost / ...MultiCgroup: rates 10, 30, 50 (and 100 for the sibling)."""
    views = [View("c1", 10), View("c2", 30), View("c3", 50)]
    assert rank(views) == ["c3", "c2", "c1"]
    assert rank([*views, View("sibling", 100)])[0] == "sibling"


def test_every_candidate_is_eligible_and_unknown_counts_as_zero() -> None:
    assert rank([View("none", None), View("tiny", 0.001), View("zero", 0.0)]) == [
        "tiny",
        "none",
        "zero",
    ]


def test_preferences_dominate_the_rate() -> None:
    views = [View("busy", 500.0, preference=A), View("idle", 0.0)]
    assert rank(views) == ["idle", "busy"]


# --- end to end through the engine --------------------------------------------------

# Read iops only, the same for both device types: the cost is the number of reads.
READS = IoCostCoeffs(read_iops=1.0)


def io_stat(h: Harness, rel: str, *lines: tuple[str, int, int]) -> None:
    """(device, rios, wios) per line; byte counters 0."""
    h.tree.write(
        rel,
        "io.stat",
        "".join(
            f"{dev} rbytes=0 wbytes=0 rios={rios} wios={wios} dbytes=0 dios=0\n"
            for dev, rios, wios in lines
        ),
    )


def load(h: Harness, **args: Any) -> KillIOCost:
    h.load(
        {
            "rulesets": [
                ruleset(
                    "io",
                    [("busy", [plugin("continue")])],
                    [plugin("kill_by_io_cost", cgroup="one_high/*", **args)],
                )
            ]
        }
    )
    assert h.engine is not None
    action = h.engine.rulesets[0].actions[0]
    assert isinstance(action, KillIOCost)
    return action


def test_prerun_keeps_the_rate_history(harness: Harness) -> None:
    """TemporalCounter: prerun computes io_cost_rate every tick, so the rate is the
    change since the previous tick (0 on the first)."""
    harness.ctx.params = ContextParams(io_devices={"8:0": DeviceType.SSD}, ssd_coeffs=READS)
    harness.tree.cgroup("one_high/a")
    io_stat(harness, "one_high/a", ("8:0", 100, 0))
    action = load(harness)
    harness.ctx.refresh()
    action.prerun(harness.ctx)  # only prerun reads the counter on this tick
    io_stat(harness, "one_high/a", ("8:0", 175, 0))
    harness.ctx.refresh()
    action.prerun(harness.ctx)
    cg = harness.ctx.resolve(action.cgroup)[0]
    assert isinstance(cg, CgroupContext) and cg.io_cost_rate() == 75.0


def test_kills_the_cgroup_with_the_highest_cost_rate(
    harness: Harness, spawner: Spawner, oolog: Path
) -> None:
    """Only --device devices count, each with its type's coefficients: heavy traffic on
    an unlisted device (9:9) is ignored, and HDD writes cost per the HDD set."""
    harness.ctx.params = ContextParams(
        io_devices={"8:0": DeviceType.SSD, "8:16": DeviceType.HDD},
        ssd_coeffs=READS,
        hdd_coeffs=IoCostCoeffs(write_iops=10.0),
    )
    procs = {name: spawner.sleeper() for name in ("reader", "writer", "other")}
    for name, proc in procs.items():
        harness.tree.cgroup(f"one_high/{name}", current=1 << 20, stat={"anon": 1}, procs=[proc.pid])
    io_stat(harness, "one_high/reader", ("8:0", 0, 0))
    io_stat(harness, "one_high/writer", ("8:16", 0, 0), ("8:0", 0, 0))
    io_stat(harness, "one_high/other", ("9:9", 0, 0))
    load(harness, post_action_delay=60)
    harness.tick()  # first tick: every rate is 0; the smallest path dies
    assert [line.split()[5] for line in harness.kills] == ["one_high/other"]
    assert spawner.is_dead(procs["other"])
    load(harness)
    io_stat(harness, "one_high/reader", ("8:0", 500, 0))  # SSD reads: +500
    io_stat(harness, "one_high/writer", ("8:16", 0, 30), ("8:0", 100, 100))  # +300 +100
    harness.tick()  # the rates since the previous tick: 500 vs 400 vs 0
    victims = [line.split()[5] for line in harness.kills]
    assert victims[1] == "one_high/reader"
    assert spawner.is_dead(procs["reader"])
    assert not spawner.is_dead(procs["writer"], timeout=0.1)
    assert 'Picked "one_high/reader" (1MB) based on io cost generation at 500' in oolog.read_text()


def test_writer_wins_once_its_rate_is_higher(harness: Harness) -> None:
    harness.ctx.params = ContextParams(
        io_devices={"8:0": DeviceType.SSD, "8:16": DeviceType.HDD},
        ssd_coeffs=READS,
        hdd_coeffs=IoCostCoeffs(write_iops=10.0),
    )
    for name in ("reader", "writer"):
        harness.tree.cgroup(f"one_high/{name}", stat={"anon": 1})
    io_stat(harness, "one_high/reader", ("8:0", 0, 0))
    io_stat(harness, "one_high/writer", ("8:16", 0, 0))
    load(harness, dry=True, post_action_delay=0)
    harness.tick()
    io_stat(harness, "one_high/reader", ("8:0", 500, 0))
    io_stat(harness, "one_high/writer", ("8:16", 0, 51))  # 510
    harness.tick()
    assert [line.split()[5] for line in harness.kills][-1] == "one_high/writer"


def test_dry_run_kills_nothing(harness: Harness, spawner: Spawner) -> None:
    """DoesntKillsHighestIOCostDry."""
    victim = spawner.sleeper()
    harness.tree.cgroup("one_high/a", stat={"anon": 1}, procs=[victim.pid])
    load(harness, dry=True)
    harness.tick()
    assert not spawner.is_dead(victim, timeout=0.2)
    assert harness.kills[0].endswith("killer:(dry)kill_by_io_cost v2")
