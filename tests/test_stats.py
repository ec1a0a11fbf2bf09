"""The in-process stats store (upstream Stats.cpp; StatsTest.BasicStats,
BasicGetAndClear)."""

from __future__ import annotations

from oomd.stats import KILLS, Stats


def test_set_increment_get() -> None:
    stats = Stats()
    assert stats.get(KILLS) is None
    stats.set(KILLS, 0)
    stats.increment(KILLS)
    stats.increment("other", 5)
    assert stats.get(KILLS) == 1
    assert stats.snapshot() == {KILLS: 1, "other": 5}


def test_reset_zeroes_values_but_keeps_keys() -> None:
    stats = Stats()
    stats.set(KILLS, 3)
    stats.reset()
    assert stats.snapshot() == {KILLS: 0}
