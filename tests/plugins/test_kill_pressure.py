"""kill_by_pressure (upstream plugins/KillPressure-inl.h; CorePluginsTest
KillPressureTest.*). Ranking is tested as a pure function on hand-made cgroups; the
plugin end to end on a fake tree with processes the test spawned."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from oomd.cgroup.context import KillPreference
from oomd.cgroup.fs import Pressure
from oomd.config.errors import ConfigError
from oomd.plugins.kill_pressure import pressure_key, rank_by_pressure
from tests.support.harness import Harness, plugin, ruleset
from tests.support.procs import Spawner

P, N, A = KillPreference.PREFER, KillPreference.NORMAL, KillPreference.AVOID


@dataclass
class View:
    name: str
    memory: tuple[float, float] | None = None
    io: tuple[float, float] | None = None
    preference: KillPreference = N
    asked: list[tuple[str, bool]] = field(default_factory=list)

    def pressure(self, resource: str, full: bool = True) -> Pressure | None:
        self.asked.append((resource, full))
        value = self.memory if resource == "memory" else self.io
        return None if value is None else Pressure(value[0], value[1], 99.0)

    def kill_preference(self) -> KillPreference:
        return self.preference


def rank(views: list[View], resource: str = "io") -> list[str]:
    return [v.name for v in rank_by_pressure(views, resource)]


def test_kills_highest_pressure() -> None:
    """KillsHighestPressure / ...MultiCgroup: key avg10/2 + avg60/2 (60, 60, 80, 99)."""
    views = [View("c1", io=(60, 60)), View("c2", io=(50, 70)), View("c3", io=(80, 80))]
    assert rank(views)[0] == "c3"
    assert rank([*views, View("sibling", io=(99, 99))])[0] == "sibling"


def test_the_full_line_of_the_chosen_resource_is_read() -> None:
    views = [View("mem", memory=(90, 90), io=(1, 1)), View("io", memory=(1, 1), io=(90, 90))]
    assert rank(views, "memory")[0] == "mem"
    assert rank(views, "io")[0] == "io"
    assert {asked for v in views for asked in v.asked} == {("io", True), ("memory", True)}


def test_avg300_is_ignored_and_absent_pressure_is_zero() -> None:
    views = [View("none"), View("low", io=(2, 2))]
    assert rank(views) == ["low", "none"]


@pytest.mark.parametrize(
    ("avg10", "avg60", "key"),
    [(10.3, 10.3, 10), (10.9, 10.9, 10), (0.0, 1.9, 0), (99.99, 99.99, 99), (33.33, 66.67, 50)],
)
def test_key_is_truncated_to_an_integer(avg10: float, avg60: float, key: int) -> None:
    """Upstream stores the average in an int: 10.3 and 10.9 both rank as 10."""
    assert pressure_key(Pressure(avg10, avg60, 0)) == key
    assert pressure_key(None) == 0


def test_truncation_ties_go_to_the_smallest_path() -> None:
    """10.9 and 10.3 tie upstream (arbitrary winner); our tie rule keeps input (path)
    order."""
    assert rank([View("a", io=(10.3, 10.3)), View("b", io=(10.9, 10.9))]) == ["a", "b"]


def test_preferences_dominate_pressure() -> None:
    views = [View("hot", io=(90, 90), preference=A), View("warm", io=(40, 40))]
    assert rank(views) == ["warm", "hot"]
    views = [View("hot", io=(90, 90)), View("cold", io=(0, 0), preference=P)]
    assert rank(views) == ["cold", "hot"]


# --- end to end through the engine --------------------------------------------------


def load(h: Harness, **args: Any) -> None:
    h.load(
        {
            "rulesets": [
                ruleset(
                    "pressure",
                    [("hot", [plugin("continue")])],
                    [plugin("kill_by_pressure", cgroup="one_high/*", **args)],
                )
            ]
        }
    )


def test_kills_exactly_the_most_pressured_cgroup(
    harness: Harness, spawner: Spawner, oolog: Path
) -> None:
    t = harness.tree
    calm, hot = spawner.sleeper(), spawner.sleeper()
    t.cgroup("one_high/calm", current=900 << 20, stat={"anon": 1}, procs=[calm.pid])
    t.cgroup(
        "one_high/hot",
        current=10 << 20,
        stat={"anon": 1},
        procs=[hot.pid],
        pressure=(12.5, 30.25, 1.0),
        io_pressure=(1, 1, 1),
    )
    load(harness, resource="memory")
    harness.tick()
    assert spawner.is_dead(hot)
    assert not spawner.is_dead(calm, timeout=0.2)
    assert harness.kills == [
        "oomd kill: 12.50 30.25 1.00 one_high/hot 10485760 ruleset:[pressure] "
        "detectorgroup:[hot] killer:kill_by_pressure v2"
    ]
    assert (
        'Picked "one_high/hot" (10MB) based on pressure generation at 10s=12.5 60s=30.25'
        in oolog.read_text()
    )


def test_io_resource_reads_io_pressure(harness: Harness) -> None:
    t = harness.tree
    t.cgroup("one_high/mem", stat={"anon": 1}, pressure=(80, 80, 80), io_pressure=(5, 5, 5))
    t.cgroup("one_high/io", stat={"anon": 1}, pressure=(5, 5, 5), io_pressure=(80, 80, 80))
    load(harness, resource="io", dry=True)
    harness.tick()
    assert [line.split()[5] for line in harness.kills] == ["one_high/io"]


def test_dry_run_kills_nothing(harness: Harness, spawner: Spawner) -> None:
    """DoesntKillsHighestPressureDry."""
    victim = spawner.sleeper()
    harness.tree.cgroup("one_high/hot", stat={"anon": 1}, procs=[victim.pid], io_pressure=(9, 9, 9))
    load(harness, resource="io", dry=True)
    harness.tick()
    assert not spawner.is_dead(victim, timeout=0.2)
    assert harness.kills[0].endswith("killer:(dry)kill_by_pressure v2")


@pytest.mark.parametrize("args", [{}, {"resource": "cpu"}])
def test_resource_is_required_and_checked(harness: Harness, args: dict[str, str]) -> None:
    harness.tree.cgroup("one_high/a")
    with pytest.raises(ConfigError, match="resource"):
        load(harness, **args)
