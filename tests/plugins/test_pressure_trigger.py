"""pressure_trigger (ours, not upstream): fires on the tick after a kernel PSI trigger
fired; without one, on the PSI ``total`` counter's rate since its previous run. The
kernel side is in tests/test_psi_triggers.py (real cgroup2 mount)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomd.cgroup.context import CgroupContext, OomdContext
from oomd.cgroup.triggers import Trigger, Watch
from oomd.engine.plugin import PluginRet
from oomd.plugins.pressure_trigger import PressureTrigger, stalled_enough
from tests.support.harness import Harness, plugin, ruleset
from tests.support.tree import psi_text


def detector(h: Harness, **args: Any) -> PressureTrigger:
    config = {"resource": "memory", **args}
    h.load(
        {
            "rulesets": [
                ruleset("r", [("g", [plugin("pressure_trigger", **config)])], [plugin("continue")])
            ]
        }
    )
    assert h.engine is not None
    found = h.engine.rulesets[0].detector_groups[0].detectors[0]
    assert isinstance(found, PressureTrigger)
    return found


def run(h: Harness, target: PressureTrigger, advance: float = 1.0) -> PluginRet:
    return h.run(target, advance)


def set_totals(h: Harness, rel: str, some: int, full: int = 0) -> None:
    h.tree.write(rel, "memory.pressure", psi_text(0, 0, 0, full, some=(0, 0, 0, some)))


# -- polled (no trigger): the total counter's rate -------------------------------------


def test_polled_fires_when_the_stall_rate_reaches_stall_per_window(harness: Harness) -> None:
    harness.tree.cgroup("w")
    p = detector(harness, cgroup="w", stall_ms="150", window_ms="1000")
    set_totals(harness, "w", some=1_000_000)
    assert run(harness, p) is PluginRet.STOP  # first run: the sample only
    set_totals(harness, "w", some=1_150_000)  # 150 ms in 1 s: exactly the rate
    assert run(harness, p) is PluginRet.CONTINUE
    set_totals(harness, "w", some=1_299_999)  # 149.999 ms in 1 s
    assert run(harness, p) is PluginRet.STOP
    set_totals(harness, "w", some=1_899_999)  # 600 ms in 5 s: 120 ms per second
    assert run(harness, p, advance=5) is PluginRet.STOP
    set_totals(harness, "w", some=2_699_999)  # 800 ms in 5 s: 160 ms per second
    assert run(harness, p, advance=5) is PluginRet.CONTINUE


def test_polled_full_reads_the_full_line(harness: Harness) -> None:
    harness.tree.cgroup("w")
    p = detector(harness, cgroup="w", type="full", stall_ms="100", window_ms="1000")
    set_totals(harness, "w", some=0, full=0)
    assert run(harness, p) is PluginRet.STOP
    set_totals(harness, "w", some=900_000, full=50_000)
    assert run(harness, p) is PluginRet.STOP
    set_totals(harness, "w", some=900_000, full=200_000)
    assert run(harness, p) is PluginRet.CONTINUE


def test_polled_any_of_several_cgroups_fires(harness: Harness, oolog: Path) -> None:
    for name in ("w/a", "w/b"):
        harness.tree.cgroup(name)
        set_totals(harness, name, some=0)
    p = detector(harness, cgroup="w/*", stall_ms="100", window_ms="2000")
    assert run(harness, p) is PluginRet.STOP
    set_totals(harness, "w/b", some=100_000)  # 100 ms in 1 s >= 100 ms per 2 s
    assert run(harness, p) is PluginRet.CONTINUE
    assert "w/b: some stall 100 ms in the last 1.00 s (polled)" in oolog.read_text()


def test_polled_counter_going_backwards_only_resamples(harness: Harness) -> None:
    """A cgroup removed and re-created restarts its counter."""
    harness.tree.cgroup("w")
    p = detector(harness, cgroup="w", stall_ms="10", window_ms="1000")
    set_totals(harness, "w", some=5_000_000)
    assert run(harness, p) is PluginRet.STOP
    set_totals(harness, "w", some=1_000)
    assert run(harness, p) is PluginRet.STOP
    set_totals(harness, "w", some=50_000)
    assert run(harness, p) is PluginRet.CONTINUE


def test_polled_missing_file_or_cgroup_never_fires(harness: Harness) -> None:
    harness.tree.cgroup("w", memory_files=False)
    p = detector(harness, cgroup="w,gone", stall_ms="1", window_ms="1000")
    assert run(harness, p) is PluginRet.STOP
    assert run(harness, p) is PluginRet.STOP
    harness.tree.write("w", "memory.pressure", "aggr 0\nsome 0 0 0\nfull 0 0 0\n")  # no total
    assert run(harness, p) is PluginRet.STOP
    assert run(harness, p) is PluginRet.STOP


def test_polled_root_reads_the_system_pressure(harness: Harness) -> None:
    p = detector(harness, cgroup="/", stall_ms="100", window_ms="1000")
    pressure = harness.proc.root / "pressure" / "memory"
    pressure.write_text(psi_text(0, 0, 0, 0, some=(0, 0, 0, 10)))
    assert run(harness, p) is PluginRet.STOP
    pressure.write_text(psi_text(0, 0, 0, 0, some=(0, 0, 0, 200_010)))
    assert run(harness, p) is PluginRet.CONTINUE


@pytest.mark.parametrize(
    ("previous", "now", "total", "fires"),
    [
        (None, 10.0, 5, False),
        ((10.0, 0), 10.0, 1_000_000, False),  # no time passed
        ((10.0, 0), 11.0, 150_000, True),
        ((10.0, 0), 12.0, 299_999, False),
        ((10.0, 100), 11.0, 50, False),  # went backwards
    ],
)
def test_stalled_enough(
    previous: tuple[float, int] | None, now: float, total: int, fires: bool
) -> None:
    assert stalled_enough(previous, now, total, 150, 1000) is fires


# -- with a kernel trigger -----------------------------------------------------------------


class FakeTriggerContext:
    """Stands in for the daemon's triggers: ``watch_pressure`` hands out one Trigger per
    cgroup and records what was asked."""

    def __init__(self, ctx: OomdContext) -> None:
        self.asked: list[tuple[str, str, str, int, int]] = []
        self.triggers: dict[str, Trigger] = {}
        ctx.watch_pressure = self.watch  # type: ignore[method-assign,assignment]

    def watch(
        self, cg: CgroupContext, resource: str, kind: str, stall_us: int, window_us: int
    ) -> Trigger:
        self.asked.append((cg.path.relative, resource, kind, stall_us, window_us))
        key = cg.path.relative
        if key not in self.triggers:
            path = f"{cg.path.absolute}/{resource}.pressure"
            self.triggers[key] = Trigger(
                Watch(path, kind, stall_us, window_us), -1, path, f"{kind} 300000 2000000"
            )
        return self.triggers[key]


def test_triggered_fires_on_the_tick_after_an_event_only(harness: Harness, oolog: Path) -> None:
    harness.tree.cgroup("w")
    p = detector(harness, cgroup="w", type="full", stall_ms="150", window_ms="1000")
    fake = FakeTriggerContext(harness.ctx)
    assert run(harness, p) is PluginRet.STOP  # registered on this run
    assert fake.asked == [("w", "memory", "full", 150_000, 1_000_000)]
    assert run(harness, p) is PluginRet.STOP
    fake.triggers["w"].events += 1
    assert run(harness, p) is PluginRet.CONTINUE
    assert "w: trigger 'full 300000 2000000' fired" in oolog.read_text()
    assert run(harness, p) is PluginRet.STOP
    fake.triggers["w"].events += 3
    assert run(harness, p, advance=0.5) is PluginRet.CONTINUE


def test_triggered_ignores_the_counter_and_a_new_trigger_starts_afresh(harness: Harness) -> None:
    harness.tree.cgroup("w")
    p = detector(harness, cgroup="w", stall_ms="1", window_ms="1000")
    fake = FakeTriggerContext(harness.ctx)
    set_totals(harness, "w", some=0)
    assert run(harness, p) is PluginRet.STOP
    set_totals(harness, "w", some=900_000)  # polled it would fire; triggered it does not
    assert run(harness, p) is PluginRet.STOP
    old = fake.triggers.pop("w")
    old.events += 5  # e.g. the cgroup was re-created: a new trigger, seen first now
    assert run(harness, p) is PluginRet.STOP
    fake.triggers["w"].events += 1
    assert run(harness, p) is PluginRet.CONTINUE


# -- args -------------------------------------------------------------------------------------


def test_defaults(harness: Harness) -> None:
    harness.tree.cgroup("w")
    p = detector(harness, cgroup="w")
    assert (p.type, p.stall_ms, p.window_ms) == ("some", 150, 1000)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"type": "both"}, "type"),
        ({"window_ms": "499"}, "window_ms"),
        ({"window_ms": "10001"}, "window_ms"),
        ({"stall_ms": "0"}, "stall_ms"),
        ({"stall_ms": "1500", "window_ms": "1000"}, "must be at most window_ms (1000), not 1500"),
        ({"resource": "cpu"}, "resource"),
    ],
)
def test_bad_args(harness: Harness, args: dict[str, str], message: str) -> None:
    problems = harness.problems("pressure_trigger", cgroup="w", **{"resource": "memory", **args})
    assert problems and any(message in p for p in problems), problems


def test_needs_a_cgroup(harness: Harness) -> None:
    assert harness.problems("pressure_trigger", resource="memory")
