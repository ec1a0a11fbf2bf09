"""swap_free (upstream plugins/SwapFree.cpp and the swap-out rate of Oomd.cpp
updateContext, reference 5.7 and 4.7; CorePluginsTest SwapFreeTest: LowSwap,
EnoughSwap, SwapOff, SwapoutRate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomd.engine.plugin import PluginRet
from oomd.plugins.swap_free import SwapFree, swap_low, swap_threshold
from tests.support.harness import Harness, plugin, ruleset

CONTINUE, STOP = PluginRet.CONTINUE, PluginRet.STOP
KiB, MiB = 1 << 10, 1 << 20
PAGE = 4096


@pytest.fixture
def harness(harness: Harness) -> Harness:
    harness.env.system.page_size = PAGE
    return harness


def detector(h: Harness, **args: Any) -> SwapFree:
    found = h.detector("swap_free", **args)
    assert isinstance(found, SwapFree)
    return found


# -- upstream's cases -----------------------------------------------------------------


def test_low_swap_fires(harness: Harness, oolog: Path) -> None:
    """SwapFreeTest.LowSwap: 72 KiB free of 20971512 KiB is below 20%."""
    harness.proc.swaps((20971512 * KiB, 20971440 * KiB))
    assert harness.run(detector(harness, threshold_pct="20")) is CONTINUE
    assert (
        "SwapFree 0MB is smaller than the threshold of 4095MB, total swap is 20479MB"
        in oolog.read_text()
    )
    assert "SwapOut rate" not in oolog.read_text()  # no bps threshold: no such line


def test_enough_swap_does_not_fire(harness: Harness) -> None:
    """SwapFreeTest.EnoughSwap."""
    harness.proc.swaps((20971512 * KiB, 3310136 * KiB))
    assert harness.run(detector(harness, threshold_pct="20")) is STOP


def test_swap_off_never_fires(harness: Harness) -> None:
    """SwapFreeTest.SwapOff: no swap, threshold 0, nothing is below it."""
    assert harness.run(detector(harness, threshold_pct="20")) is STOP
    assert harness.run(detector(harness, threshold_pct="100")) is STOP


def test_swapout_rate_gates_firing(harness: Harness, oolog: Path) -> None:
    """SwapFreeTest.SwapoutRate: with swap low, 800 kB/s of swap-out stays under a
    1 MB/s threshold, 1.2 MB/s fires (rates from /proc/vmstat pswpout over ticks)."""
    harness.proc.swaps((20971512 * KiB, 20971440 * KiB))
    found = detector(harness, threshold_pct="20", swapout_bps_threshold="1000000")
    harness.proc.vmstat(pswpout=0)
    assert harness.run(found) is STOP  # first sample: rate 0
    harness.proc.vmstat(pswpout=195)  # 798720 B/s
    assert harness.run(found) is STOP
    harness.proc.vmstat(pswpout=195 + 293)  # 1200128 B/s
    assert harness.run(found) is CONTINUE
    assert "SwapOut rate 1200128bps is greater than the threshold of 1000000bps" in (
        oolog.read_text()
    )


# -- thresholds -----------------------------------------------------------------------


@pytest.mark.parametrize(("used_kib", "expected"), [(900, STOP), (901, CONTINUE)])
def test_free_must_be_strictly_below_the_threshold(
    harness: Harness, used_kib: int, expected: PluginRet
) -> None:
    """1000 KiB of swap, 10%: 100 KiB free is not below 102400 bytes, 99 KiB is."""
    harness.proc.swaps((1000 * KiB, used_kib * KiB))
    assert harness.run(detector(harness, threshold_pct="10")) is expected


@pytest.mark.parametrize(("pages", "expected"), [(249, STOP), (250, CONTINUE)])
def test_swapout_rate_is_compared_with_greater_or_equal(
    harness: Harness, pages: int, expected: PluginRet
) -> None:
    harness.proc.swaps((1000 * KiB, 1000 * KiB))
    found = detector(harness, threshold_pct="10", swapout_bps_threshold=str(250 * PAGE))
    harness.proc.vmstat(pswpout=1000)
    harness.run(found)
    harness.proc.vmstat(pswpout=1000 + pages)
    assert harness.run(found) is expected


def test_rate_is_per_second_of_the_clock(harness: Harness) -> None:
    """Over a 5 s tick the same 250 pages are a fifth of the rate."""
    harness.proc.swaps((1000 * KiB, 1000 * KiB))
    found = detector(harness, threshold_pct="10", swapout_bps_threshold=str(50 * PAGE))
    harness.proc.vmstat(pswpout=0)
    harness.run(found, 5)
    harness.proc.vmstat(pswpout=249)
    assert harness.run(found, 5) is STOP
    harness.proc.vmstat(pswpout=249 + 250)
    assert harness.run(found, 5) is CONTINUE


def test_missing_pswpout_is_a_zero_rate_not_a_crash(harness: Harness) -> None:
    """Upstream crashes on a vmstat without pswpout; here the rate reads 0."""
    harness.proc.swaps((1000 * KiB, 1000 * KiB))
    found = detector(harness, threshold_pct="10", swapout_bps_threshold="1")
    harness.proc.vmstat(pgpgout=10)
    assert harness.run(found) is STOP
    harness.proc.vmstat(pgpgout=20)
    assert harness.run(found) is STOP
    without_rate = detector(harness, threshold_pct="10")
    assert harness.run(without_rate) is CONTINUE


def test_unreadable_vmstat_does_not_matter_without_a_rate_threshold(harness: Harness) -> None:
    harness.proc.swaps((1000 * KiB, 1000 * KiB))
    (harness.proc.root / "vmstat").write_text("no-space-line\n")
    assert harness.run(detector(harness, threshold_pct="10")) is CONTINUE
    assert harness.run(detector(harness, threshold_pct="10", swapout_bps_threshold="1")) is STOP


@pytest.mark.parametrize("pct", ["-5", "500"])
def test_percent_outside_0_to_100_fires_whenever_swap_is_on(harness: Harness, pct: str) -> None:
    """Verified against upstream: accepted. Its unsigned arithmetic makes the threshold
    huge, so any swap at all is "low"; here that comes with a warning."""
    found = detector(harness, threshold_pct=pct)
    assert harness.compiled is not None
    assert any("outside 0..100" in w for w in harness.compiled.warnings)
    assert harness.run(found) is STOP  # no swap
    harness.proc.swaps((1000 * KiB, 0))
    assert harness.run(found) is CONTINUE


def test_threshold_arithmetic() -> None:
    assert swap_threshold(1000, 10) == 100
    assert swap_threshold(999, 10) == 99  # integer division
    assert swap_threshold(0, 50) == 0
    assert swap_threshold(1000, -5) == ((1000 * (2**64 - 5)) % 2**64) // 100
    assert swap_low(1000, 901, 10, 0.0, 0)
    assert not swap_low(1000, 900, 10, 0.0, 0)
    assert not swap_low(1000, 1000, 10, 5.0, 6)
    assert swap_low(1000, 1000, 10, 6.0, 6)
    assert swap_low(1000, 1000, 10, 0.0, -1)


def test_swap_totals_come_from_proc_swaps_not_meminfo(harness: Harness) -> None:
    harness.proc.meminfo(swap_total=1000 * MiB, swap_free=0)
    assert harness.run(detector(harness, threshold_pct="10")) is STOP


def test_malformed_proc_swaps_is_no_swap(harness: Harness) -> None:
    (harness.proc.root / "swaps").write_text("Filename Type Size Used Priority\n/s file x 1 -2\n")
    assert harness.run(detector(harness, threshold_pct="100")) is STOP


# -- args -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, 'Required arg "threshold_pct" missing'),  # verified
        ({"threshold_pct": "abc"}, 'arg "threshold_pct"'),
        ({"threshold_pct": "5", "cgroup": "a"}, 'Unknown arg "cgroup"'),  # verified
        ({"threshold_pct": "5", "swapout_bps_threshold": "x"}, 'arg "swapout_bps_threshold"'),
    ],
)
def test_bad_args_are_rejected(harness: Harness, args: dict[str, str], message: str) -> None:
    problems = harness.problems("swap_free", **args)
    assert len(problems) == 1 and message in problems[0], problems


def test_args_and_defaults(harness: Harness) -> None:
    """swapout_bps_threshold is HEAD's (0.5.0 rejects it as unknown)."""
    found = detector(harness, threshold_pct="10")
    assert (found.threshold_pct, found.swapout_bps_threshold) == (10, 0)
    found = detector(harness, threshold_pct="10", swapout_bps_threshold="1048576")
    assert found.swapout_bps_threshold == 1 << 20


# -- in the engine ----------------------------------------------------------------------


def test_engine_samples_the_swapout_rate_every_tick(harness: Harness, oolog: Path) -> None:
    """Tick by tick through the engine, /proc changing between ticks: the prerun samples
    pswpout every tick, so each tick's rate covers exactly the last interval, also
    across ticks where swap is plentiful."""
    harness.load(
        {
            "rulesets": [
                ruleset(
                    "low swap",
                    [
                        (
                            "swap below 10% while swapping out",
                            [
                                plugin(
                                    "swap_free",
                                    threshold_pct="10",
                                    swapout_bps_threshold=str(100 * PAGE),
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

    def tick(used_kib: int, pswpout: int) -> None:
        harness.proc.swaps((1000 * KiB, used_kib * KiB))
        harness.proc.vmstat(pgpgin=1, pswpout=pswpout, pgfault=2)
        before = oolog.read_text().count("has fired for Ruleset=low swap")
        harness.tick()
        fired.append(oolog.read_text().count("has fired for Ruleset=low swap") > before)

    tick(100, 0)  # plenty of swap, first sample
    tick(100, 5000)  # swapping out fast, plenty of swap
    tick(950, 5050)  # swap low, but only 50 pages in the last second
    tick(950, 5200)  # 150 pages in the last second
    tick(950, 5300)  # exactly 100 pages
    tick(950, 5399)  # 99
    tick(100, 9000)  # swap freed
    assert fired == [False, False, False, True, True, False, False]
