"""dump_cgroup_overview (upstream plugins/DumpCgroupOverview.cpp, reference 5.9; no
upstream test covers it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomd.cgroup.fs import Pressure
from oomd.engine.plugin import PluginRet
from oomd.plugins.dump_cgroup_overview import DumpCgroupOverview, overview_line, should_dump
from tests.support.harness import Harness

CONTINUE = PluginRet.CONTINUE
MiB, GiB = 1 << 20, 1 << 30


def detector(h: Harness, **args: Any) -> DumpCgroupOverview:
    found = h.detector("dump_cgroup_overview", **args)
    assert isinstance(found, DumpCgroupOverview)
    return found


def lines(oolog: Path) -> list[str]:
    return [line.split("] ", 1)[1] for line in oolog.read_text().splitlines()]


def test_logs_a_cgroup_under_pressure(harness: Harness, oolog: Path) -> None:
    harness.proc.meminfo(swap_total=2 * GiB, swap_free=GiB + 512 * MiB)
    harness.proc.vmstat(pgscan_kswapd=1000, pgscan_direct=234, pswpout=5)
    harness.tree.cgroup("system.slice", pressure=(12.5, 3.25, 1), current=700 * MiB + 5)
    assert harness.run(detector(harness, cgroup="system.slice")) is CONTINUE
    assert lines(oolog) == [
        "cgroup=system.slice total=700MB pressure=12.50:3.25:1.00 "
        "swapfree=1536MB/2048MB pgscan=1234"
    ]


@pytest.mark.parametrize(
    ("pressure", "logged"),
    [
        ((1.0, 0.01, 0), True),
        ((0.99, 50, 50), False),  # avg10 below 1
        ((5.0, 0.0, 50), False),  # avg60 not above 0
        ((0, 0, 0), False),
    ],
)
def test_only_cgroups_under_pressure_are_logged(
    harness: Harness, oolog: Path, pressure: tuple[float, float, float], logged: bool
) -> None:
    """Logged when full avg10 >= 1 and avg60 > 0; always CONTINUE."""
    harness.tree.cgroup("cg", pressure=pressure)
    assert harness.run(detector(harness, cgroup="cg")) is CONTINUE
    assert bool(lines(oolog)) is logged


def test_always_logs_every_cgroup(harness: Harness, oolog: Path) -> None:
    """``always``: every resolved cgroup, in path order; missing values read 0 (no
    memory.current, no pressure file, no swap, no vmstat)."""
    harness.tree.cgroup("s/a", pressure=(0, 0, 0), current=3 * MiB)
    harness.tree.cgroup("s/b", memory_files=False)
    assert harness.run(detector(harness, cgroup="s/*", always="true")) is CONTINUE
    assert lines(oolog) == [
        "cgroup=s/a total=3MB pressure=0.00:0.00:0.00 swapfree=0MB/0MB pgscan=0",
        "cgroup=s/b total=0MB pressure=0.00:0.00:0.00 swapfree=0MB/0MB pgscan=0",
    ]


def test_root_cgroup(harness: Harness, oolog: Path) -> None:
    """The root's relative path is empty, its usage MemTotal - MemFree, its pressure
    /proc/pressure/memory."""
    harness.proc.meminfo(total=8 * GiB, free=6 * GiB)
    harness.proc.pressure("memory", 2, 1, 0)
    assert harness.run(detector(harness, cgroup="/")) is CONTINUE
    assert lines(oolog) == [
        "cgroup= total=2048MB pressure=2.00:1.00:0.00 swapfree=0MB/0MB pgscan=0"
    ]


def test_missing_meminfo_keys_and_broken_vmstat_read_zero(harness: Harness, oolog: Path) -> None:
    (harness.proc.root / "meminfo").write_text("MemTotal: 100 kB\n")
    (harness.proc.root / "vmstat").write_text("pgscan_kswapd 5\nbroken\n")
    harness.tree.cgroup("cg", pressure=(5, 5, 5))
    assert harness.run(detector(harness, cgroup="cg")) is CONTINUE
    assert lines(oolog)[0].endswith("swapfree=0MB/0MB pgscan=0")


def test_missing_pgscan_direct_counts_zero(harness: Harness, oolog: Path) -> None:
    harness.proc.vmstat(pgscan_kswapd=7)
    harness.tree.cgroup("cg", pressure=(5, 5, 5))
    harness.run(detector(harness, cgroup="cg"))
    assert lines(oolog)[0].endswith("pgscan=7")


def test_nothing_resolved_still_continues(harness: Harness, oolog: Path) -> None:
    assert harness.run(detector(harness, cgroup="absent", always="true")) is CONTINUE
    assert oolog.read_text() == ""


def test_vanishing_cgroup_between_ticks(harness: Harness, oolog: Path) -> None:
    harness.tree.cgroup("cg", pressure=(5, 5, 5))
    found = detector(harness, cgroup="cg")
    harness.run(found)
    harness.tree.remove("cg")
    assert harness.run(found) is CONTINUE
    assert len(lines(oolog)) == 1


def test_decisions() -> None:
    assert should_dump(Pressure(0, 0, 0), True)
    assert should_dump(Pressure(1, 0.01, 0), False)
    assert not should_dump(Pressure(1, 0, 0), False)
    assert (
        overview_line("a", -MiB, Pressure(1.005, 2, 3), 5 * MiB, 6 * MiB, 7)
        == "cgroup=a total=-1MB pressure=1.00:2.00:3.00 swapfree=5MB/6MB pgscan=7"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"cgroup": "a", "always": "yes"}, 'arg "always"'),
        ({"always": "true"}, 'Required arg "cgroup" missing'),
        ({"cgroup": "a", "debug": "true"}, 'Unknown arg "debug"'),
    ],
)
def test_bad_args_are_rejected(harness: Harness, args: dict[str, str], message: str) -> None:
    problems = harness.problems("dump_cgroup_overview", **args)
    assert len(problems) == 1 and message in problems[0], problems


def test_defaults(harness: Harness) -> None:
    assert detector(harness, cgroup="a").always is False
