"""nr_dying_descendants (upstream plugins/NrDyingDescendants.cpp, reference 5.8;
CorePluginsTest NrDyingDescendantsTest: SingleCgroupLte, SingleCgroupGt, RootCgroup,
MultiCgroupGt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomd.engine.plugin import PluginRet
from oomd.plugins.nr_dying_descendants import NrDyingDescendants, dying_matches
from tests.support.harness import Harness

CONTINUE, STOP = PluginRet.CONTINUE, PluginRet.STOP


def detector(h: Harness, **args: Any) -> NrDyingDescendants:
    found = h.detector("nr_dying_descendants", **args)
    assert isinstance(found, NrDyingDescendants)
    return found


def dying(h: Harness, cgroup: str, n: int) -> None:
    h.tree.cgroup(cgroup, nr_dying=n, memory_files=False)


def test_single_cgroup_lte(harness: Harness) -> None:
    """NrDyingDescendantsTest.SingleCgroupLte: 123 > 100 does not fire, 90 does."""
    found = detector(harness, cgroup="cg", debug="true", lte="true", count="100")
    dying(harness, "cg", 123)
    assert harness.run(found) is STOP
    dying(harness, "cg", 90)
    assert harness.run(found) is CONTINUE


def test_single_cgroup_gt(harness: Harness) -> None:
    """NrDyingDescendantsTest.SingleCgroupGt."""
    found = detector(harness, cgroup="cg", debug="true", lte="false", count="100")
    dying(harness, "cg", 123)
    assert harness.run(found) is CONTINUE
    dying(harness, "cg", 90)
    assert harness.run(found) is STOP


def test_root_cgroup(harness: Harness) -> None:
    """NrDyingDescendantsTest.RootCgroup: the root's own cgroup.stat."""
    dying(harness, "", 30)
    found = detector(harness, cgroup="/", debug="true", lte="false", count="29")
    assert harness.run(found) is CONTINUE


def test_any_cgroup_suffices(harness: Harness) -> None:
    """NrDyingDescendantsTest.MultiCgroupGt (lte, in fact): 90 <= 100 among 200 and
    300 fires."""
    dying(harness, "above", 200)
    dying(harness, "above1", 300)
    dying(harness, "below", 90)
    found = detector(harness, cgroup="above,above1,below", debug="true", count="100")
    assert harness.run(found) is CONTINUE
    assert harness.run(detector(harness, cgroup="above,above1", count="100")) is STOP


@pytest.mark.parametrize(
    ("n", "lte", "expected"),
    [
        (99, "true", CONTINUE),
        (100, "true", CONTINUE),
        (101, "true", STOP),
        (100, "false", STOP),
        (101, "false", CONTINUE),
    ],
)
def test_both_sides_of_count(harness: Harness, n: int, lte: str, expected: PluginRet) -> None:
    dying(harness, "cg", n)
    assert harness.run(detector(harness, cgroup="cg", lte=lte, count="100")) is expected


def test_cgroup_without_cgroup_stat_is_skipped(harness: Harness) -> None:
    """Reference 4.4: no cgroup.stat is absent (skipped, even for lte 0)."""
    harness.tree.cgroup("nofile", memory_files=False)
    assert harness.run(detector(harness, cgroup="nofile", count="0")) is STOP


def test_cgroup_stat_without_the_key_counts_zero(harness: Harness) -> None:
    harness.tree.cgroup("cg", memory_files=False)
    harness.tree.write("cg", "cgroup.stat", "nr_descendants 3\n")
    assert harness.run(detector(harness, cgroup="cg", count="0")) is CONTINUE
    assert harness.run(detector(harness, cgroup="cg", count="0", lte="false")) is STOP


def test_cgroup_appearing_and_vanishing(harness: Harness) -> None:
    found = detector(harness, cgroup="work/*", count="10", lte="false")
    assert harness.run(found) is STOP
    dying(harness, "work/a", 50)
    assert harness.run(found) is CONTINUE
    harness.tree.remove("work/a")
    assert harness.run(found) is STOP


def test_debug_log_line(harness: Harness, oolog: Path) -> None:
    dying(harness, "cg", 90)
    assert harness.run(detector(harness, cgroup="cg", count="100", debug="true")) is CONTINUE
    dying(harness, "cg", 190)
    assert harness.run(detector(harness, cgroup="cg", count="100", lte="0", debug="1")) is (
        CONTINUE
    )
    lines = oolog.read_text()
    assert "nr_dying_descendants=90 <= count=100" in lines
    assert "nr_dying_descendants=190 > count=100" in lines


def test_no_log_without_debug(harness: Harness, oolog: Path) -> None:
    dying(harness, "cg", 90)
    assert harness.run(detector(harness, cgroup="cg", count="100")) is CONTINUE
    assert oolog.read_text() == ""


def test_decision() -> None:
    assert dying_matches(5, 5, True) and not dying_matches(5, 5, False)
    assert dying_matches(6, 5, False) and not dying_matches(6, 5, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"cgroup": "a"}, 'Required arg "count" missing'),
        ({"cgroup": "a", "count": "-1"}, 'arg "count"'),  # verified: rejected
        ({"cgroup": "a", "count": "5", "negate": "true"}, 'Unknown arg "negate"'),  # verified
        ({"count": "5"}, 'Required arg "cgroup" missing'),  # verified (0.5.0)
        ({"cgroup": "a", "count": "5", "lte": "maybe"}, 'arg "lte"'),
    ],
)
def test_bad_args_are_rejected(harness: Harness, args: dict[str, str], message: str) -> None:
    problems = harness.problems("nr_dying_descendants", **args)
    assert len(problems) == 1 and message in problems[0], problems


def test_defaults(harness: Harness) -> None:
    found = detector(harness, cgroup="a", count="0")
    assert (found.count, found.lte, found.debug) == (0, True, False)
