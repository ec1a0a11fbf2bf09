"""pressure_above (upstream plugins/PressureAbove.cpp; CorePluginsTest PressureAboveTest:
DetectsHighMemPressure, NoDetectLowMemPressure, DetectsHighMemPressureMultiCgroup,
DetectsHighMemPressureWildcard)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomd.cgroup.context import OomdContext
from oomd.engine.plugin import PluginRet
from oomd.plugins.pressure_above import PressureAbove
from tests.support.harness import Harness


def detector(h: Harness, **args: Any) -> PressureAbove:
    config = {"resource": "memory", "threshold": "80", "duration": "0", **args}
    h.load(
        {
            "rulesets": [
                {
                    "name": "r",
                    "detectors": [["g", {"name": "pressure_above", "args": config}]],
                    "actions": [{"name": "continue"}],
                }
            ]
        }
    )
    assert h.engine is not None
    plugin = h.engine.rulesets[0].detector_groups[0].detectors[0]
    assert isinstance(plugin, PressureAbove)
    return plugin


def run(h: Harness, plugin: PressureAbove, advance: float = 1.0) -> PluginRet:
    h.clock.advance(advance)
    h.ctx.refresh()
    return plugin.run(h.ctx)


def test_fires_when_avg10_above_threshold(harness: Harness) -> None:
    harness.tree.cgroup("high_pressure", pressure=(99.99, 99.99, 99.99))
    assert run(harness, detector(harness, cgroup="high_pressure")) is PluginRet.CONTINUE


def test_does_not_fire_when_avg10_not_above_threshold(harness: Harness) -> None:
    harness.tree.cgroup("low_pressure", pressure=(1.11, 1.11, 1.11))
    assert run(harness, detector(harness, cgroup="low_pressure")) is PluginRet.STOP


def test_threshold_is_strict(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(80.0, 0, 0))
    plugin = detector(harness, cgroup="cg")
    assert run(harness, plugin) is PluginRet.STOP
    harness.tree.set_pressure("cg", 80.01)
    assert run(harness, plugin) is PluginRet.CONTINUE


def test_picks_most_pressured_of_several_cgroups(harness: Harness) -> None:
    harness.tree.cgroup("low", pressure=(1, 1, 1))
    harness.tree.cgroup("high", pressure=(99, 99, 99))
    assert run(harness, detector(harness, cgroup="low,high")) is PluginRet.CONTINUE


def test_wildcard_cgroups(harness: Harness) -> None:
    harness.tree.cgroup("slice/low", pressure=(1, 1, 1))
    harness.tree.cgroup("slice/high", pressure=(99, 99, 99))
    assert run(harness, detector(harness, cgroup="slice/*")) is PluginRet.CONTINUE


def test_weighted_choice_uses_avg10_of_the_heaviest_cgroup(harness: Harness) -> None:
    """The cgroup with the highest 3*avg10+2*avg60+avg300 is chosen, and then only its
    avg10 is compared: a spiky cgroup with a lower weighted score does not count."""
    harness.tree.cgroup("spiky", pressure=(90, 0, 0))  # score 270
    harness.tree.cgroup("steady", pressure=(70, 70, 70))  # score 420
    assert run(harness, detector(harness, cgroup="spiky,steady")) is PluginRet.STOP


@pytest.mark.parametrize("names", [("a", "b"), ("b", "a")])
def test_weighted_choice_is_single_precision(harness: Harness, names: tuple[str, str]) -> None:
    """Upstream adds its float pressures in single precision: (66.23, 67.88, 28.34)
    scores above (60.14, 89.91, 2.55) there, though below it in double precision, so
    the first cgroup's avg10 (over 65) decides, whichever order they come in."""
    first, second = names
    harness.tree.cgroup(first, pressure=(66.23, 67.88, 28.34))
    harness.tree.cgroup(second, pressure=(60.14, 89.91, 2.55))
    assert 66.23 * 3 + 67.88 * 2 + 28.34 < 60.14 * 3 + 89.91 * 2 + 2.55
    found = detector(harness, cgroup="a,b", threshold="65")
    assert run(harness, found) is PluginRet.CONTINUE


def test_missing_pressure_file_counts_as_zero(harness: Harness) -> None:
    harness.tree.cgroup("nofile")
    assert run(harness, detector(harness, cgroup="nofile", threshold="0")) is PluginRet.STOP


def test_io_resource_reads_io_pressure(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(0, 0, 0), io_pressure=(95, 95, 95))
    assert run(harness, detector(harness, cgroup="cg", resource="io")) is PluginRet.CONTINUE
    assert run(harness, detector(harness, cgroup="cg", resource="memory")) is PluginRet.STOP


def test_root_cgroup_reads_proc_pressure(harness: Harness) -> None:
    harness.proc.pressure("memory", 95, 95, 95)
    assert run(harness, detector(harness, cgroup="/")) is PluginRet.CONTINUE


def test_duration_counts_whole_seconds_over_threshold(harness: Harness) -> None:
    """Fires once (now - first tick over) truncated to seconds >= duration."""
    harness.tree.cgroup("cg", pressure=(90, 90, 90))
    plugin = detector(harness, cgroup="cg", duration="10")
    assert run(harness, plugin) is PluginRet.STOP  # t0: timer starts
    assert run(harness, plugin, 5) is PluginRet.STOP  # 5 s
    assert run(harness, plugin, 4.99) is PluginRet.STOP  # 9.99 s truncates to 9
    assert run(harness, plugin, 0.01) is PluginRet.CONTINUE  # exactly 10 s
    assert run(harness, plugin, 5) is PluginRet.CONTINUE


def test_dropping_below_threshold_resets_the_duration(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(90, 90, 90))
    plugin = detector(harness, cgroup="cg", duration="10")
    run(harness, plugin)
    run(harness, plugin, 9)
    harness.tree.set_pressure("cg", 10, 10, 10)
    assert run(harness, plugin, 1) is PluginRet.STOP
    harness.tree.set_pressure("cg", 90, 90, 90)
    assert run(harness, plugin, 1) is PluginRet.STOP  # timer restarted
    assert run(harness, plugin, 10) is PluginRet.CONTINUE


def test_cgroup_vanishing_between_ticks_stops_firing_without_error(harness: Harness) -> None:
    harness.tree.cgroup("cg", pressure=(90, 90, 90))
    plugin = detector(harness, cgroup="cg")
    assert run(harness, plugin) is PluginRet.CONTINUE
    harness.tree.remove("cg")
    assert run(harness, plugin) is PluginRet.STOP


@pytest.mark.parametrize(
    "content",
    [
        "",
        "garbage\n",
        "some avg10=90.00 avg60=90.00 avg300=90.00 total=1\n",
        "some avg10=90.00 avg60=90.00 avg300=90.00 total=1\nfull avg10=x avg60=1 avg300=1 total=1\n",
        "some avg10=90.00 avg60=90.00 avg300=90.00 total=1\nfull avg60=90 avg10=90 avg300=1 total=1\n",
    ],
)
def test_malformed_pressure_file_counts_as_zero(harness: Harness, content: str) -> None:
    harness.tree.cgroup("cg")
    harness.tree.write("cg", "memory.pressure", content)
    assert run(harness, detector(harness, cgroup="cg", threshold="0")) is PluginRet.STOP


def test_fire_log_line_matches_upstream(harness: Harness, oolog: Path) -> None:
    harness.tree.cgroup("cg", pressure=(91.234, 1, 1), current=300 << 20)
    assert run(harness, detector(harness, cgroup="cg", duration="0")) is PluginRet.CONTINUE
    assert (
        "10s pressure 91.23 is over the threshold of 80 for 0 seconds , total usage is 300MB"
        in oolog.read_text()
    )


def test_context_is_the_only_input(harness: Harness) -> None:
    """The decision reads nothing but the OomdContext (no direct file access)."""
    harness.tree.cgroup("cg", pressure=(90, 90, 90))
    plugin = detector(harness, cgroup="cg")
    ctx: OomdContext = harness.ctx
    ctx.refresh()
    cg = ctx.resolve(plugin.cgroup)[0]
    assert cg.mem_pressure() is not None
    harness.tree.set_pressure("cg", 0, 0, 0)  # changed mid-tick: not seen this tick
    assert plugin.run(ctx) is PluginRet.CONTINUE


def test_pressure_detectors_ask_for_a_psi_trigger_at_their_threshold(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both pressure detectors declare the files they watch, so the daemon can arm a
    kernel trigger and run an early tick (issue 7); full pressure, at the threshold."""
    calls: list[tuple[list[str], str, str, float]] = []
    monkeypatch.setattr(
        type(harness.ctx),
        "watch_threshold",
        lambda self, cgroups, resource, kind, percent: calls.append(
            ([c.path.relative for c in cgroups], resource, kind, percent)
        ),
    )
    harness.tree.cgroup("cg", pressure=(1, 1, 1))
    run(harness, detector(harness, cgroup="cg", resource="io", threshold="30"))
    assert calls == [(["cg"], "io", "full", 30)]
    calls.clear()
    rising = harness.detector(
        "pressure_rising_beyond", cgroup="cg", resource="memory", threshold="40", duration="0"
    )
    harness.ctx.refresh()
    rising.run(harness.ctx)
    assert calls == [(["cg"], "memory", "full", 40)]
