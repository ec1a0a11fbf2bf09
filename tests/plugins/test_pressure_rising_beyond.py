"""pressure_rising_beyond (upstream plugins/PressureRisingBeyond.cpp, reference 5.4;
CorePluginsTest PressureRisingBeyondTest: DetectsHighMemPressure,
NoDetectLowMemPressure, DetectsHighMemPressureMultiCgroup,
DetectsHighMemPressureWildcard)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomd.cgroup.fs import Pressure
from oomd.engine.plugin import Plugin, PluginRet
from oomd.plugins.pressure_rising_beyond import (
    PressureRisingBeyond,
    falling_rapidly,
    rising_beyond,
)
from tests.support.harness import Harness, plugin, ruleset

CONTINUE, STOP = PluginRet.CONTINUE, PluginRet.STOP


def detector(h: Harness, **args: Any) -> Plugin:
    config: dict[str, Any] = {"resource": "memory", "threshold": "80", "duration": "0"}
    config.update(args)
    found = h.detector("pressure_rising_beyond", **config)
    assert isinstance(found, PressureRisingBeyond)
    return found


# -- upstream's cases -----------------------------------------------------------------


def test_detects_high_memory_pressure(harness: Harness) -> None:
    """PressureRisingBeyondTest.DetectsHighMemPressure."""
    harness.tree.cgroup("high_pressure", pressure=(99.99, 99.99, 99.99), current=987654321)
    found = detector(harness, cgroup="high_pressure", fast_fall_ratio="0")
    assert harness.run(found) is CONTINUE


def test_does_not_detect_low_memory_pressure(harness: Harness) -> None:
    """PressureRisingBeyondTest.NoDetectLowMemPressure."""
    harness.tree.cgroup("low_pressure", pressure=(1.11, 1.11, 1.11), current=987654321)
    found = detector(harness, cgroup="low_pressure", fast_fall_ratio="0")
    assert harness.run(found) is STOP


def test_most_pressured_of_several_cgroups_counts(harness: Harness) -> None:
    """PressureRisingBeyondTest.DetectsHighMemPressureMultiCgroup."""
    harness.tree.cgroup("high_pressure", pressure=(99.99, 99.99, 99.99))
    harness.tree.cgroup("low_pressure", pressure=(1.11, 1.11, 1.11))
    found = detector(harness, cgroup="low_pressure,high_pressure", fast_fall_ratio="0")
    assert harness.run(found) is CONTINUE


def test_wildcard_cgroups(harness: Harness) -> None:
    """PressureRisingBeyondTest.DetectsHighMemPressureWildcard."""
    harness.tree.cgroup("high_pressure", pressure=(99.99, 99.99, 99.99))
    harness.tree.cgroup("low_pressure", pressure=(1.11, 1.11, 1.11))
    found = detector(harness, cgroup="*_*", fast_fall_ratio="0")
    assert harness.run(found) is CONTINUE


# -- the initial state and fast_fall_ratio ----------------------------------------------


@pytest.mark.parametrize(("avg10", "expected"), [(85.0, CONTINUE), (84.99, STOP)])
def test_first_run_needs_avg10_of_85_with_the_default_ratio(
    harness: Harness, avg10: float, expected: PluginRet
) -> None:
    """Reference 5.4 (quirk): the remembered avg10 starts at 100, so the first run is
    "falling fast" below 100 * 0.85."""
    harness.tree.cgroup("cg", pressure=(avg10, 90, 90))
    assert harness.run(detector(harness, cgroup="cg")) is expected


def test_initial_state_is_forgotten_after_the_first_run(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(84, 90, 90))
    found = detector(harness, cgroup="cg")
    assert harness.run(found) is STOP  # 84 < 100 * 0.85
    assert harness.run(found) is CONTINUE  # 84 < 84 * 0.85 is false


def test_fast_fall_compares_with_the_previous_run(harness: Harness) -> None:
    """Falling fast: avg10 < previous run's avg10 * fast_fall_ratio (strict); the
    previous run is always the one just before, firing or not."""
    harness.tree.cgroup("cg", pressure=(95, 90, 90))
    found = detector(harness, cgroup="cg", threshold="40", fast_fall_ratio="0.5")
    assert harness.run(found) is CONTINUE
    harness.tree.set_pressure("cg", 47.49, 90, 90)  # below 95 * 0.5
    assert harness.run(found) is STOP
    assert harness.run(found) is CONTINUE  # 47.49 is not below 47.49 * 0.5
    harness.tree.set_pressure("cg", 95, 90, 90)
    assert harness.run(found) is CONTINUE
    harness.tree.set_pressure("cg", 47.5, 90, 90)  # exactly 95 * 0.5: not below
    assert harness.run(found) is CONTINUE


@pytest.mark.parametrize(("avg10", "expected"), [(80.74, STOP), (80.76, CONTINUE)])
def test_fast_fall_boundary_with_default_ratio(
    harness: Harness, avg10: float, expected: PluginRet
) -> None:
    harness.tree.cgroup("cg", pressure=(95, 90, 90))
    found = detector(harness, cgroup="cg", threshold="50")
    assert harness.run(found) is CONTINUE
    harness.tree.set_pressure("cg", avg10, 90, 90)  # 95 * 0.85 = 80.75
    assert harness.run(found) is expected


def test_fast_fall_is_single_precision_arithmetic() -> None:
    """Upstream multiplies floats: 10.2 after 12 is falling fast with ratio 0.85 in
    single precision (10.2f < 12f * 0.85f), though not in double precision."""
    assert not 10.2 < 12 * 0.85
    assert falling_rapidly(10.2, 12.0, 0.85)
    assert not falling_rapidly(10.21, 12.0, 0.85)


def test_fast_fall_float_boundary_through_the_plugin(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(12, 90, 90))
    found = detector(harness, cgroup="cg", threshold="5")
    harness.run(found)
    harness.tree.set_pressure("cg", 10.2, 90, 90)
    assert harness.run(found) is STOP


def test_ratio_zero_never_falls_and_ratio_above_one_always_falls(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(90, 90, 90))
    never = detector(harness, cgroup="cg", fast_fall_ratio="0")
    assert [harness.run(never) for _ in range(3)] == [CONTINUE] * 3
    always = detector(harness, cgroup="cg", fast_fall_ratio="1.5")
    assert [harness.run(always) for _ in range(3)] == [STOP] * 3


def test_last_pressure_is_remembered_even_without_cgroups(harness: Harness) -> None:
    """No cgroup at all remembers zeros: the cgroup's return then is not falling."""
    harness.tree.cgroup("cg", pressure=(90, 90, 90))
    found = detector(harness, cgroup="cg", fast_fall_ratio="0.99")
    assert harness.run(found) is STOP  # 90 < 99
    harness.tree.remove("cg")
    assert harness.run(found) is STOP
    harness.tree.cgroup("cg", pressure=(82, 90, 90))
    assert harness.run(found) is CONTINUE  # 82 >= 0 * 0.99


# -- thresholds and duration ------------------------------------------------------------


def test_both_averages_must_be_strictly_above_the_threshold(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(90, 80, 0))
    found = detector(harness, cgroup="cg", fast_fall_ratio="0")
    assert harness.run(found) is STOP  # avg60 == threshold
    harness.tree.set_pressure("cg", 90, 80.01)
    assert harness.run(found) is CONTINUE
    harness.tree.set_pressure("cg", 80, 90)
    assert harness.run(found) is STOP  # avg10 == threshold
    harness.tree.set_pressure("cg", 80.01, 90)
    assert harness.run(found) is CONTINUE


def test_duration_is_timed_on_avg60(harness: Harness) -> None:
    """The timer starts when avg60 goes over, whatever avg10 does; firing also needs
    avg10 over at that moment."""
    harness.tree.cgroup("cg", pressure=(10, 90, 90))
    found = detector(harness, cgroup="cg", duration="10", fast_fall_ratio="0")
    assert harness.run(found) is STOP  # t0: avg60 over, timer starts
    assert harness.run(found, 9.99) is STOP  # 9 whole seconds
    harness.tree.set_pressure("cg", 90, 90)
    assert harness.run(found, 0.01) is CONTINUE  # exactly 10 s since avg60 went over


def test_duration_boundary_and_reset(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(90, 90, 90))
    found = detector(harness, cgroup="cg", duration="5", fast_fall_ratio="0")
    assert harness.run(found) is STOP
    assert harness.run(found, 4.999) is STOP
    assert harness.run(found, 0.001) is CONTINUE
    harness.tree.set_pressure("cg", 90, 79, 90)  # avg60 drops: reset
    assert harness.run(found) is STOP
    harness.tree.set_pressure("cg", 90, 90, 90)
    assert harness.run(found) is STOP  # restarted
    assert harness.run(found, 5) is CONTINUE


def test_avg60_alone_does_not_fire(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(10, 95, 95))
    assert harness.run(detector(harness, cgroup="cg", fast_fall_ratio="0")) is STOP


def test_selection_is_by_weighted_score_not_by_avg60(harness: Harness) -> None:
    """As pressure_above: the cgroup with the highest 3*avg10 + 2*avg60 + avg300 is
    the one looked at."""
    harness.tree.cgroup("spiky", pressure=(99, 10, 0))  # score 317
    harness.tree.cgroup("steady", pressure=(50, 95, 0))  # score 340
    found = detector(harness, cgroup="spiky,steady", fast_fall_ratio="0")
    assert harness.run(found) is STOP  # steady: avg10 50 is not over 80


def test_io_resource(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(0, 0, 0), io_pressure=(95, 95, 95))
    assert harness.run(detector(harness, cgroup="cg", resource="io")) is CONTINUE
    assert harness.run(detector(harness, cgroup="cg", resource="memory")) is STOP


def test_root_reads_proc_pressure(harness: Harness) -> None:
    harness.proc.pressure("memory", 95, 95, 95)
    assert harness.run(detector(harness, cgroup="/")) is CONTINUE


@pytest.mark.parametrize(
    "content",
    ["", "full avg10=95 avg60=95 avg300=95 total=1\n", "some x\nfull avg10=95 avg60=oops\n"],
)
def test_malformed_pressure_counts_as_zero(harness: Harness, content: str) -> None:
    harness.tree.cgroup("cg")
    harness.tree.write("cg", "memory.pressure", content)
    assert harness.run(detector(harness, cgroup="cg", threshold="0")) is STOP


def test_cgroup_vanishing_and_reappearing(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(90, 90, 90))
    found = detector(harness, cgroup="cg", duration="2", fast_fall_ratio="0")
    assert [harness.run(found) for _ in range(3)] == [STOP, STOP, CONTINUE]
    harness.tree.remove("cg")
    assert harness.run(found) is STOP
    harness.tree.cgroup("cg", pressure=(90, 90, 90))
    assert [harness.run(found) for _ in range(3)] == [STOP, STOP, CONTINUE]


def test_fire_log_line(harness: Harness, oolog: Path) -> None:
    harness.tree.cgroup("cg", pressure=(90, 85.5, 1), current=300 << 20)
    assert harness.run(detector(harness, cgroup="cg", duration="0")) is CONTINUE
    assert (
        "1m pressure 85.50 is over the threshold of 80 for 0 seconds , total usage is 300MB"
        in oolog.read_text()
    )


def test_rising_beyond_decision() -> None:
    """The decision as a plain function: (avg60 over, avg10 over and not falling)."""
    p = Pressure(90, 90, 0)
    assert rising_beyond(p, 100, 80, 0.85) == (True, True)
    assert rising_beyond(p, 200, 80, 0.85) == (True, False)
    assert rising_beyond(Pressure(90, 70, 0), 0, 80, 0.85) == (False, True)


# -- args -----------------------------------------------------------------------------


def test_args_and_defaults(harness: Harness) -> None:
    found = detector(harness, cgroup="cg", resource="io", threshold="60", duration="30")
    assert isinstance(found, PressureRisingBeyond)
    assert (found.resource, found.threshold, found.duration) == ("io", 60, 30)
    assert found.fast_fall_ratio == pytest.approx(0.85)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"fast_fall_ratio": "abc"}, 'arg "fast_fall_ratio"'),
        ({"resource": "cpu"}, 'arg "resource"'),
        ({"threshold": None}, 'Required arg "threshold" missing'),
        ({"duration": None}, 'Required arg "duration" missing'),
        ({"resource": None}, 'Required arg "resource" missing'),
        ({"cgroup": None}, 'Required arg "cgroup" missing'),
        ({"negate": "true"}, 'Unknown arg "negate"'),
    ],
)
def test_bad_args_are_rejected(harness: Harness, args: dict[str, Any], message: str) -> None:
    """Verified against upstream 0.5.0: a non-numeric fast_fall_ratio and resource cpu
    fail the config; a negative ratio (-1) is accepted."""
    config: dict[str, Any] = {
        "cgroup": "cg",
        "resource": "memory",
        "threshold": "80",
        "duration": "0",
    }
    config.update(args)
    problems = harness.problems(
        "pressure_rising_beyond", **{k: v for k, v in config.items() if v is not None}
    )
    assert len(problems) == 1 and message in problems[0], problems


def test_multi_tick_engine_run_on_a_changing_tree(harness: Harness, oolog: Path) -> None:
    """The real engine, tick by tick: pressure builds up in one cgroup, the detector
    fires once avg60 has been over for the duration, stops while avg10 collapses, and
    a new cgroup matching the wildcard takes over."""
    tree = harness.tree
    tree.cgroup("workload.slice/a", pressure=(10, 10, 10))
    harness.load(
        {
            "rulesets": [
                ruleset(
                    "rising",
                    [
                        (
                            "workload",
                            [
                                plugin(
                                    "pressure_rising_beyond",
                                    cgroup="workload.slice/*",
                                    resource="memory",
                                    threshold="50",
                                    duration="3",
                                )
                            ],
                        )
                    ],
                    [plugin("continue")],
                )
            ]
        }
    )
    fired: list[bool] = []

    def tick() -> None:
        before = oolog.read_text().count("1m pressure")
        harness.tick()
        fired.append(oolog.read_text().count("1m pressure") > before)

    tick()  # calm
    tree.set_pressure("workload.slice/a", 60, 55, 20)
    tick()  # avg60 over: the timer starts
    tick()
    tick()
    tick()  # 3 s since avg60 went over
    tree.set_pressure("workload.slice/a", 50.99, 55, 20)  # below 60 * 0.85: falling fast
    tick()
    tree.cgroup("workload.slice/b", pressure=(70, 60, 20))  # appears, more pressured
    tick()
    tree.remove("workload.slice/b")
    tree.set_pressure("workload.slice/a", 30, 45, 20)  # avg60 under: reset
    tick()
    assert fired == [False, False, False, False, True, False, True, False]
