"""memory_above (upstream plugins/MemoryAbove.cpp, reference 5.5 and 4.9; CorePluginsTest
MemoryAboveTest: DetectsHighMemUsage, NoDetectLowMemUsage, DetectsHighMemUsageCompat,
NoDetectLowMemUsageCompat, DetectsHighMemUsagePercent, NoDetectLowMemUsagePercent,
DetectsHighMemUsageMultiple, NoDetectLowMemUsageMultiple, DetectsHighAnonUsage,
NoDetectLowAnonUsage, DetectsHighAnonUsageIgnoreLowMemUsage,
NoDetectLowAnonUsageIgnoreHighMemUsage).

Upstream's tests read MemTotal from a fixture file given as ``meminfo_location``
(8388608 kB = 8 GiB); the cases below that mirror them do the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomd.engine.plugin import PluginRet
from oomd.plugins.memory_above import MemoryAbove, largest_usage
from tests.support.harness import Harness, plugin, ruleset

CONTINUE, STOP = PluginRet.CONTINUE, PluginRet.STOP
MiB, GiB = 1 << 20, 1 << 30


@pytest.fixture
def meminfo(tmp_path: Path) -> str:
    """Upstream's fixtures/plugins/memory_above/meminfo: MemTotal 8 GiB."""
    path = tmp_path / "fixture-meminfo"
    path.write_text("MemTotal:       8388608 kB\nMemFree:         123456 kB\n")
    return str(path)


def detector(h: Harness, **args: Any) -> MemoryAbove:
    config: dict[str, Any] = {"duration": "0"}
    config.update(args)
    found = h.detector("memory_above", **config)
    assert isinstance(found, MemoryAbove)
    return found


# -- upstream's cases -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "usage", "expected"),
    [
        ("1536M", 2 * GiB, CONTINUE),  # DetectsHighMemUsage
        ("1536M", GiB, STOP),  # NoDetectLowMemUsage
        ("1536", 2 * GiB, CONTINUE),  # DetectsHighMemUsageCompat: a bare number is MiB
        ("1536", GiB, STOP),  # NoDetectLowMemUsageCompat
        ("10%", 2 * GiB, CONTINUE),  # DetectsHighMemUsagePercent: 10% of 8 GiB
    ],
)
def test_upstream_usage_cases(
    harness: Harness, meminfo: str, threshold: str, usage: int, expected: PluginRet
) -> None:
    harness.tree.cgroup("memory_cg", current=usage)
    found = detector(harness, cgroup="memory_cg", threshold=threshold, meminfo_location=meminfo)
    assert harness.run(found) is expected


def test_percent_without_any_usage_does_not_fire(harness: Harness, meminfo: str) -> None:
    """NoDetectLowMemUsagePercent: 80% and a cgroup with no memory.current."""
    harness.tree.cgroup("low_memory", memory_files=False)
    found = detector(harness, cgroup="low_memory", threshold="80%", meminfo_location=meminfo)
    assert harness.run(found) is STOP


@pytest.mark.parametrize(
    ("configured", "expected"), [("low_memory", STOP), ("high_memory", CONTINUE)]
)
def test_only_the_configured_cgroup_counts(
    harness: Harness, meminfo: str, configured: str, expected: PluginRet
) -> None:
    """NoDetectLowMemUsageMultiple / DetectsHighMemUsageMultiple (debug on): another
    cgroup's usage is not looked at."""
    harness.tree.cgroup("low_memory", current=GiB)
    harness.tree.cgroup("high_memory", current=2 * GiB)
    found = detector(
        harness, cgroup=configured, threshold="1536M", debug="true", meminfo_location=meminfo
    )
    assert harness.run(found) is expected


@pytest.mark.parametrize(
    ("args", "anon", "current", "expected"),
    [
        ({"threshold_anon": "1536M"}, 2 * GiB, None, CONTINUE),  # DetectsHighAnonUsage
        ({"threshold_anon": "1536M"}, GiB, None, STOP),  # NoDetectLowAnonUsage
        # DetectsHighAnonUsageIgnoreLowMemUsage
        ({"threshold_anon": "1536M", "threshold": "1536M"}, 2 * GiB, GiB, CONTINUE),
        # NoDetectLowAnonUsageIgnoreHighMemUsage
        ({"threshold_anon": "1536M", "threshold": "1536M"}, GiB, 2 * GiB, STOP),
    ],
)
def test_upstream_anon_cases(
    harness: Harness,
    meminfo: str,
    args: dict[str, str],
    anon: int,
    current: int | None,
    expected: PluginRet,
) -> None:
    harness.tree.cgroup("cg", stat={"anon": anon, "file": 0}, current=current, swap=20)
    found = detector(harness, cgroup="cg", meminfo_location=meminfo, **args)
    assert harness.run(found) is expected


# -- thresholds -----------------------------------------------------------------------


@pytest.mark.parametrize(("usage", "expected"), [(1536 * MiB, STOP), (1536 * MiB + 1, CONTINUE)])
def test_threshold_is_strict(harness: Harness, usage: int, expected: PluginRet) -> None:
    harness.tree.cgroup("cg", current=usage)
    assert harness.run(detector(harness, cgroup="cg", threshold="1.5G")) is expected


def test_percent_is_of_memtotal_read_at_start_up(harness: Harness) -> None:
    """Without meminfo_location MemTotal comes from /proc/meminfo (the fake one), read
    once: a later change of MemTotal does not move the threshold."""
    harness.proc.meminfo(total=4 * GiB)
    harness.tree.cgroup("cg", current=GiB)
    found = detector(harness, cgroup="cg", threshold="25%")
    assert found.threshold_bytes == GiB
    assert harness.run(found) is STOP
    harness.tree.set_current("cg", GiB + 1)
    harness.proc.meminfo(total=64 * GiB)
    assert harness.run(found) is CONTINUE


def test_largest_usage_of_several_cgroups_counts(harness: Harness) -> None:
    harness.tree.cgroup("a", current=GiB)
    harness.tree.cgroup("b", current=3 * GiB)
    harness.tree.cgroup("c")  # no memory.current: 0
    assert harness.run(detector(harness, cgroup="a,b,c", threshold="2G")) is CONTINUE
    assert harness.run(detector(harness, cgroup="a,c", threshold="2G")) is STOP
    assert harness.run(detector(harness, cgroup="*", threshold="2G")) is CONTINUE


def test_largest_usage_decision() -> None:
    assert largest_usage([]) == (0, "")
    assert largest_usage([("a", 5), ("b", 9), ("c", 9)]) == (9, "b")
    assert largest_usage([("a", 0), ("b", -3)]) == (0, "")


def test_negative_threshold_fires_even_without_cgroups(harness: Harness) -> None:
    """Reference 4.9: "-5" is -5 MiB (accepted upstream); usage starts at 0 > -5 MiB."""
    assert harness.run(detector(harness, cgroup="absent", threshold="-5")) is CONTINUE


def test_root_usage_is_memtotal_minus_memfree(harness: Harness) -> None:
    harness.proc.meminfo(total=8 * GiB, free=3 * GiB)
    assert harness.run(detector(harness, cgroup="/", threshold="5119M")) is CONTINUE
    assert harness.run(detector(harness, cgroup="/", threshold="5120M")) is STOP


def test_root_usage_without_memfree_is_absent(harness: Harness) -> None:
    """Missing meminfo key: upstream's root usage is absent (0 here), not MemTotal."""
    (harness.proc.root / "meminfo").write_text("MemTotal:  8388608 kB\n")
    assert harness.run(detector(harness, cgroup="/", threshold="1M")) is STOP


def test_anon_missing_from_memory_stat_counts_zero(harness: Harness) -> None:
    harness.tree.cgroup("cg", stat={"file": 5 * GiB}, current=5 * GiB)
    assert harness.run(detector(harness, cgroup="cg", threshold_anon="1M")) is STOP


# -- duration ---------------------------------------------------------------------------


def test_duration_exactly_at_the_boundary(harness: Harness) -> None:
    harness.tree.cgroup("cg", current=2 * GiB)
    found = detector(harness, cgroup="cg", threshold="1G", duration="10")
    assert harness.run(found) is STOP  # timer starts
    assert harness.run(found, 9.999) is STOP
    assert harness.run(found, 0.001) is CONTINUE  # 10 s
    assert harness.run(found, 100) is CONTINUE


def test_dropping_to_the_threshold_resets_the_duration(harness: Harness) -> None:
    harness.tree.cgroup("cg", current=2 * GiB)
    found = detector(harness, cgroup="cg", threshold="1G", duration="2")
    assert [harness.run(found) for _ in range(3)] == [STOP, STOP, CONTINUE]
    harness.tree.set_current("cg", GiB)  # == threshold: not over
    assert harness.run(found) is STOP
    harness.tree.set_current("cg", 2 * GiB)
    assert [harness.run(found) for _ in range(3)] == [STOP, STOP, CONTINUE]


def test_cgroup_appearing_and_vanishing_between_ticks(harness: Harness) -> None:
    found = detector(harness, cgroup="app.slice/*", threshold="1G", duration="1")
    assert harness.run(found) is STOP
    harness.tree.cgroup("app.slice/big", current=2 * GiB)
    assert harness.run(found) is STOP  # appeared: timer starts
    assert harness.run(found) is CONTINUE
    harness.tree.remove("app.slice/big")
    assert harness.run(found) is STOP
    harness.tree.cgroup("app.slice/big", current=2 * GiB)
    assert harness.run(found) is STOP  # the timer restarted


# -- logs -----------------------------------------------------------------------------


def test_debug_log_lines(harness: Harness, oolog: Path) -> None:
    """Upstream's debug lines, including the missing separator in the first."""
    harness.tree.cgroup("cg", current=3 * GiB, stat={"anon": 7})
    found = detector(harness, cgroup="cg", threshold="1G", debug="true")
    assert harness.run(found) is CONTINUE
    lines = oolog.read_text()
    assert f'cgroup "cg" memory.current={3 * GiB}memory.stat (anon)=7' in lines
    assert f'cgroup "cg" memory usage={3 * GiB} hit threshold={GiB}' in lines
    assert (
        'cgroup "cg" current memory usage 3072MB is over the threshold of 1024MB for 0 seconds'
        in lines
    )


def test_anon_debug_line(harness: Harness, oolog: Path) -> None:
    harness.tree.cgroup("cg", current=1, stat={"anon": 3 * GiB})
    found = detector(harness, cgroup="cg", threshold_anon="1G", debug="1")
    assert harness.run(found) is CONTINUE
    assert f'cgroup "cg" anon usage={3 * GiB} hit threshold={GiB}' in oolog.read_text()


def test_no_logs_without_debug(harness: Harness, oolog: Path) -> None:
    harness.tree.cgroup("cg", current=3 * GiB)
    assert harness.run(detector(harness, cgroup="cg", threshold="1G")) is CONTINUE
    assert oolog.read_text() == ""


# -- start-up and validation ------------------------------------------------------------


def base(**args: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"cgroup": "cg", "threshold": "1G", "duration": "0"}
    config.update(args)
    return {k: v for k, v in config.items() if v is not None}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (base(threshold=None), 'Required arg "threshold" missing'),  # verified
        (base(duration=None), 'Required arg "duration" missing'),  # verified
        (base(threshold="abc"), "arg \"threshold\": 'abc' is not a size"),  # verified
        (base(threshold="150%"), 'arg "threshold"'),  # verified
        (base(threshold="1G", threshold_anon="zzz"), 'arg "threshold_anon"'),  # verified
        (base(debug="x"), 'arg "debug"'),
        (base(cgroup=None), 'Required arg "cgroup" missing'),
    ],
)
def test_bad_args_are_rejected(harness: Harness, args: dict[str, Any], message: str) -> None:
    problems = harness.problems("memory_above", **args)
    assert len(problems) == 1 and message in problems[0], problems


def test_threshold_is_ignored_when_threshold_anon_is_given(harness: Harness) -> None:
    """Verified against upstream: an unparsable threshold next to threshold_anon is
    accepted (upstream erases it); we say so in a warning."""
    found = detector(harness, cgroup="cg", threshold="zzz", threshold_anon="1G")
    assert found.is_anon and found.threshold_bytes == GiB
    assert harness.compiled is not None
    assert any("\"threshold\" 'zzz' is ignored" in warning for warning in harness.compiled.warnings)


def test_unreadable_meminfo_fails_start_up(harness: Harness, tmp_path: Path) -> None:
    """Verified against upstream: `Could not read meminfo ...`, config invalid."""
    problems = harness.problems("memory_above", **base(meminfo_location=str(tmp_path / "no")))
    assert len(problems) == 1
    assert "failed to init: Could not read meminfo" in problems[0]
    assert "No such file or directory" in problems[0]
    (harness.proc.root / "meminfo").unlink()
    assert "Could not read meminfo" in harness.problems("memory_above", **base())[0]


def test_meminfo_without_memtotal_fails_start_up(harness: Harness) -> None:
    """Verified against upstream: `meminfo does not contain MemTotal`."""
    (harness.proc.root / "meminfo").write_text("MemFree:  100 kB\n")
    problems = harness.problems("memory_above", **base())
    assert len(problems) == 1 and "meminfo does not contain MemTotal" in problems[0]


def test_decimal_bare_threshold_warns(harness: Harness) -> None:
    """Deliberate difference (docs/compatibility.md): "1.5" is 1.5 MiB, not 1 byte."""
    found = detector(harness, cgroup="cg", threshold="1.5")
    assert found.threshold_bytes == 3 * MiB // 2
    assert harness.compiled is not None
    assert any("upstream oomd reads it as 1 bytes" in w for w in harness.compiled.warnings)


def test_args_and_defaults(harness: Harness, meminfo: str) -> None:
    found = detector(harness, cgroup="cg", threshold="10%", meminfo_location=meminfo)
    assert (found.debug, found.is_anon, found.duration) == (False, False, 0)
    assert found.threshold_bytes == 8 * GiB // 10
    assert found.mem_total == 8 * GiB


def test_root_works_without_the_memory_controller(harness: Harness) -> None:
    """On the root, usage is MemTotal - MemFree from /proc/meminfo, which needs no
    memory controller: on a hybrid host (cgroup2 without it) memory_above still fires
    there, as upstream's does."""
    harness.env.controllers = frozenset({"cpu", "io"})
    harness.proc.meminfo(total=8 * GiB, free=1 * GiB)
    harness.load(
        {
            "rulesets": [
                ruleset(
                    "r",
                    [("g", [plugin("memory_above", cgroup="/", threshold="6G", duration="0")])],
                    [plugin("continue")],
                )
            ]
        }
    )
    assert harness.compiled is not None and harness.compiled.warnings == []
    detector = (
        harness.engine.rulesets[0].detector_groups[0].detectors[0] if harness.engine else None
    )
    assert detector is not None and detector.unavailable is None
    harness.ctx.refresh()
    assert detector.run(harness.ctx) is PluginRet.CONTINUE
