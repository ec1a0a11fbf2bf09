"""memory_reclaim (upstream plugins/MemoryReclaim.cpp, reference 5.6; CorePluginsTest
MemoryReclaimTest: SingleCgroupReclaimSuccess, MultiCgroupReclaimSuccess)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomd.engine.plugin import PluginRet
from oomd.plugins.memory_reclaim import MemoryReclaim, reclaimed_recently, total_pgscan
from tests.support.harness import Harness, plugin, ruleset

CONTINUE, STOP = PluginRet.CONTINUE, PluginRet.STOP


def detector(h: Harness, **args: Any) -> MemoryReclaim:
    config: dict[str, Any] = {"duration": "0"}
    config.update(args)
    found = h.detector("memory_reclaim", **config)
    assert isinstance(found, MemoryReclaim)
    return found


def pgscan(h: Harness, cgroup: str, value: int) -> None:
    h.tree.cgroup(cgroup, stat={"anon": 1, "pgscan": value, "pgsteal": value})


# -- upstream's cases -----------------------------------------------------------------


def test_single_cgroup_first_pages_scanned_count_as_a_reclaim(harness: Harness) -> None:
    """MemoryReclaimTest.SingleCgroupReclaimSuccess: fixture cgroup1 has pgscan 5; the
    first run sees 5 > 0 and fires."""
    pgscan(harness, "cgroup1", 5)
    assert harness.run(detector(harness, cgroup="cgroup1")) is CONTINUE


def test_multi_cgroup_sums_pgscan(harness: Harness) -> None:
    """MemoryReclaimTest.MultiCgroupReclaimSuccess: pgscan 0 and 5 sum to 5."""
    pgscan(harness, "cgroup1", 0)
    pgscan(harness, "cgroup2", 5)
    assert harness.run(detector(harness, cgroup="cgroup1,cgroup2")) is CONTINUE


# -- firing rule ------------------------------------------------------------------------


def test_no_reclaim_ever_seen_does_not_fire(harness: Harness) -> None:
    """Deliberate difference (docs/compatibility.md): upstream's last reclaim time
    starts at the monotonic epoch (boot), so within ``duration`` seconds of boot it
    fires without any reclaim; here nothing fires before a reclaim is seen."""
    harness.clock.now = 0.0
    pgscan(harness, "cg", 0)
    found = detector(harness, cgroup="cg", duration="10")
    assert harness.run(found, 0.5) is STOP
    assert not reclaimed_recently(None, 0.5, 10)


@pytest.mark.parametrize(("elapsed", "expected"), [(10.999, CONTINUE), (11.0, STOP)])
def test_duration_counts_whole_seconds_since_the_last_reclaim(
    harness: Harness, elapsed: float, expected: PluginRet
) -> None:
    """CONTINUE while (now - last reclaim) truncated to seconds <= duration."""
    pgscan(harness, "cg", 100)
    found = detector(harness, cgroup="cg", duration="10")
    assert harness.run(found) is CONTINUE  # the reclaim
    assert harness.run(found, elapsed) is expected  # no new pages scanned


def test_duration_zero_fires_for_less_than_a_second(harness: Harness) -> None:
    pgscan(harness, "cg", 100)
    found = detector(harness, cgroup="cg", duration="0")
    assert harness.run(found) is CONTINUE
    assert harness.run(found, 0.999) is CONTINUE
    assert harness.run(found, 0.001) is STOP


def test_each_increase_restarts_the_window(harness: Harness) -> None:
    pgscan(harness, "cg", 100)
    found = detector(harness, cgroup="cg", duration="2")
    assert harness.run(found) is CONTINUE
    assert harness.run(found, 2) is CONTINUE
    pgscan(harness, "cg", 101)
    assert harness.run(found, 1) is CONTINUE  # new reclaim at t=3
    assert harness.run(found, 2) is CONTINUE
    assert harness.run(found, 1) is STOP  # 3 s since


def test_unchanged_or_lower_sum_is_no_reclaim(harness: Harness) -> None:
    pgscan(harness, "a", 100)
    pgscan(harness, "b", 50)
    found = detector(harness, cgroup="a,b", duration="0")
    assert harness.run(found) is CONTINUE
    assert harness.run(found, 5) is STOP  # unchanged
    harness.tree.remove("b")  # the sum drops to 100: not a reclaim
    assert harness.run(found, 5) is STOP
    assert harness.run(found, 5) is STOP  # 100 again: no increase


def test_cgroup_returning_counts_as_a_reclaim(harness: Harness) -> None:
    """As upstream: the sum is all that is remembered, so a cgroup that vanishes and
    comes back raises it again."""
    pgscan(harness, "a", 100)
    pgscan(harness, "b", 50)
    found = detector(harness, cgroup="a,b", duration="0")
    harness.run(found)
    harness.tree.remove("b")
    assert harness.run(found, 5) is STOP
    pgscan(harness, "b", 50)
    assert harness.run(found, 5) is CONTINUE


def test_cgroup_appearing_with_scanned_pages_is_a_reclaim(harness: Harness) -> None:
    found = detector(harness, cgroup="work.slice/*", duration="0")
    assert harness.run(found) is STOP
    pgscan(harness, "work.slice/new", 7)
    assert harness.run(found) is CONTINUE


def test_missing_memory_stat_or_pgscan_counts_zero(harness: Harness) -> None:
    harness.tree.cgroup("nofile")
    harness.tree.cgroup("nokey", stat={"anon": 5})
    harness.tree.cgroup("garbage")
    harness.tree.write("garbage", "memory.stat", "pgscan lots\n")
    assert harness.run(detector(harness, cgroup="nofile,nokey,garbage")) is STOP


def test_total_pgscan() -> None:
    assert total_pgscan([]) == 0
    assert total_pgscan([None, 5, None, 7]) == 12


def test_root_reads_the_fs_root_memory_stat(harness: Harness) -> None:
    harness.tree.write("", "memory.stat", "pgscan 9\n")
    assert harness.run(detector(harness, cgroup="/")) is CONTINUE


# -- args -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"cgroup": "cg"}, 'Required arg "duration" missing'),
        ({"cgroup": "cg", "duration": "x"}, 'arg "duration"'),  # verified: rejected
        ({"duration": "5"}, 'Required arg "cgroup" missing'),
        ({"cgroup": "cg", "duration": "5", "threshold": "1"}, 'Unknown arg "threshold"'),
    ],
)
def test_bad_args_are_rejected(harness: Harness, args: dict[str, str], message: str) -> None:
    problems = harness.problems("memory_reclaim", **args)
    assert len(problems) == 1 and message in problems[0], problems


def test_needs_the_memory_controller() -> None:
    assert MemoryReclaim.needs_controllers == frozenset({"memory"})


# -- in the engine ------------------------------------------------------------------------


def test_desktop_group_fires_on_pressure_with_recent_reclaim(harness: Harness, oolog: Path) -> None:
    """Upstream desktop.json's detector group, tick by tick through the engine, on a
    tree whose files change between ticks: pressure_above (60 for 3 s) AND
    memory_reclaim (within 2 s). Every detector of the group runs every tick, so the
    reclaim history stays continuous while pressure is low."""
    tree = harness.tree
    tree.cgroup("user.slice", pressure=(10, 10, 10), stat={"pgscan": 0})
    harness.load(
        {
            "rulesets": [
                ruleset(
                    "user session protection",
                    [
                        (
                            "user pressure above 60 for 3s",
                            [
                                plugin(
                                    "pressure_above",
                                    cgroup="user.slice",
                                    resource="memory",
                                    threshold="60",
                                    duration="3",
                                ),
                                plugin("memory_reclaim", cgroup="user.slice", duration="2"),
                            ],
                        )
                    ],
                    [plugin("continue")],
                )
            ]
        }
    )
    fired: list[bool] = []

    def tick(pressure: float, scanned: int) -> None:
        tree.set_pressure("user.slice", pressure, pressure, pressure)
        tree.write("user.slice", "memory.stat", f"anon 1\npgscan {scanned}\n")
        before = oolog.read_text().count("has fired for Ruleset=user session protection")
        harness.tick()
        after = oolog.read_text().count("has fired for Ruleset=user session protection")
        fired.append(after > before)

    tick(10, 0)  # t=1
    tick(10, 500)  # t=2: reclaim without pressure
    tick(70, 500)  # t=3: pressure starts
    tick(70, 500)  # t=4
    tick(70, 500)  # t=5: 2 s of pressure, reclaim 3 s ago
    tick(70, 500)  # t=6: 3 s of pressure, but no reclaim for 4 s
    tick(70, 900)  # t=7: reclaim again
    tick(70, 900)  # t=8
    tick(70, 900)  # t=9: reclaim 2 s ago
    tick(70, 900)  # t=10: 3 s ago
    tick(40, 1000)  # t=11: reclaim, but the pressure is gone
    assert fired == [False, False, False, False, False, False, True, True, True, False, False]
