"""The fast paths of the per-tick context give exactly what the plain ones gave: PSI
parsing, reads relative to the root descriptor, cgroups found by path string, child
listings adopted as read, and the bounded context dump of a kill attempt."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from oomd.cgroup import fs
from oomd.cgroup.context import OomdContext
from oomd.cgroup.fs import Pressure
from oomd.cgroup.path import CgroupPath, CgroupPattern
from oomd.cgroup.system import SystemContext
from oomd.cnum import INT64_MAX
from oomd.engine import kill_base
from tests.support.harness import Harness, always_acting, plugin
from tests.support.tree import FakeProc, FakeTree, psi_text

# -- PSI parsing --------------------------------------------------------------------------


KERNEL = psi_text(1.25, 0.5, 0.01, 123456, some=(3.5, 2.0, 1.0, 999999)).encode()


def _mutations(rng: random.Random, data: bytes, count: int) -> list[bytes]:
    pieces = [b" ", b"  ", b"\n", b"=", b"x", b"1", b".", b"-", b"\r", b"\t", b"", b"e5"]
    out = []
    for _ in range(count):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(mutated) + 1)
            action = rng.random()
            if action < 0.4 and mutated:
                del mutated[at : at + rng.randint(1, 3)]
            else:
                mutated[at:at] = rng.choice(pieces)
        out.append(bytes(mutated))
    return out


@pytest.mark.parametrize("full", [True, False])
def test_fast_pressure_parser_matches_the_general_one(full: bool) -> None:
    rng = random.Random(20261126)
    samples = [
        KERNEL,
        KERNEL.rstrip(b"\n"),
        KERNEL + b"extra line\n",
        KERNEL.replace(b"\n", b" trailing\n"),
        b"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        b"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n\n",
        b"some\n",
        b"",
        b"aggr 1\nsome 1.0 2.0 3.0\nfull 4.0 5.0 6.0\n",
        *_mutations(rng, KERNEL, 3000),
    ]
    for data in samples:
        got = fs.parse_pressure(data, full)
        want = fs.parse_pressure_general(data, full)
        assert got == want, data
        assert got is None or type(got) is Pressure


def test_pressure_averages_share_float_objects() -> None:
    a = fs.parse_pressure(KERNEL, True)
    b = fs.parse_pressure(KERNEL, True)
    assert a is not None and b is not None and a == b
    assert a.avg10 is b.avg10


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"0\n", 0),
        (b"max\n", INT64_MAX),
        (b"123\n", 123),
        (b"123", 123),
        (b"max", INT64_MAX),
        (b"\n", None),
        (b"1\n2\n", None),
        (b" 42\n", 42),
        (b"12abc\n", 12),
        (b"", None),
    ],
)
def test_parse_limit(data: bytes, expected: int | None) -> None:
    assert fs.parse_limit(data) == expected


# -- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("root", ["/sys/fs/cgroup", "/", "/x/"])
@pytest.mark.parametrize("parts", [(), ("a",), ("a", "b c")])
def test_relative_is_derived_from_the_absolute_path(root: str, parts: tuple[str, ...]) -> None:
    path = CgroupPath(root, parts)
    assert path.relative == "/".join(parts)
    assert CgroupPath(root, path.relative).absolute == path.absolute


def test_resolve_raw_names_the_same_paths_as_resolve(tree: FakeTree) -> None:
    for rel in ("a/x", "a/y", "b/x", ".hidden/x", "c"):
        tree.cgroup(rel)
    for text in ("*/x", "a/*", "*", "c", "a/x", "/", "nope/*"):
        pattern = CgroupPattern(tree.fs, text)
        raw = pattern.resolve_raw()
        assert [(CgroupPath(tree.fs, p), i) for _, p, i in raw] == pattern.resolve()
        assert all(a == CgroupPath(tree.fs, p).absolute for a, p, _ in raw)


# -- the context ---------------------------------------------------------------------------


def test_reads_follow_a_replaced_root(tmp_path: Path) -> None:
    """Files are opened relative to a descriptor of the root; a root replaced at the
    same path (a remount, a test tree rebuilt) is picked up at the next refresh."""
    first = FakeTree(tmp_path / "cg")
    first.cgroup("a", current=1)
    ctx = OomdContext(first.fs)
    ctx.refresh()
    a = ctx.get(CgroupPath(first.fs, "a"))
    assert a is not None and a.current_usage() == 1
    os.rename(tmp_path / "cg", tmp_path / "old")
    second = FakeTree(tmp_path / "cg")
    second.cgroup("a", current=2)
    ctx.refresh()
    a = ctx.get(CgroupPath(second.fs, "a"))
    assert a is not None and a.current_usage() == 2
    ctx.close()
    ctx.refresh()  # closed: reopened on demand
    assert ctx.get(CgroupPath(second.fs, "a")) is not None


def test_reads_outside_the_root_go_by_absolute_path(tmp_path: Path) -> None:
    inside = FakeTree(tmp_path / "cg")
    other = FakeTree(tmp_path / "other")
    other.cgroup("z", current=7)
    ctx = OomdContext(inside.fs)
    ctx.refresh()
    z = ctx.get(CgroupPath(other.fs, "z"))
    assert z is not None and z.current_usage() == 7
    ctx.close()


def test_child_listings_agree_within_a_tick(tree: FakeTree, proc: FakeProc) -> None:
    for name in ("c", "a", "b"):
        tree.cgroup(f"p/{name}")
    ctx = OomdContext(tree.fs, SystemContext(proc.path))
    ctx.refresh()
    parent = ctx.get(CgroupPath(tree.fs, "p"))
    assert parent is not None
    kids = ctx.children(parent)
    assert [k.path.relative for k in kids] == ["p/a", "p/b", "p/c"]
    tree.cgroup("p/d")  # appears mid-tick: not in this tick's listing
    assert parent.children() == [(k.path.name, k.inode) for k in kids]
    assert ctx.children(parent) == kids and ctx.children(parent) is not ctx.children(parent)
    ctx.refresh()
    parent = ctx.get(CgroupPath(tree.fs, "p"))
    assert parent is not None
    assert [n for n, _ in parent.children()] == ["a", "b", "c", "d"]
    assert [k.path.name for k in ctx.children(parent)] == ["a", "b", "c", "d"]
    ctx.close()


def test_known_cgroups_keep_their_context_and_path(tree: FakeTree, proc: FakeProc) -> None:
    tree.cgroup("w/a")
    ctx = OomdContext(tree.fs, SystemContext(proc.path))
    ctx.refresh()
    pattern = (CgroupPattern(tree.fs, "w/*"),)
    (first,) = ctx.resolve(pattern)
    ctx.refresh()
    (again,) = ctx.resolve(pattern)
    assert again is first and again.path is first.path
    parent = ctx.get(CgroupPath(tree.fs, "w"))
    assert parent is not None and ctx.children(parent) == [first]
    assert first.parent() is parent
    ctx.close()


# -- the context dump of a kill attempt ----------------------------------------------------


def test_context_dump_stops_after_ten_or_a_hundred_candidates(
    harness: Harness, oolog: Path
) -> None:
    """Telling a candidate negligible reads its io.pressure and memory.swap.current:
    the dump looks at the 100 best-ranked candidates at most."""
    harness.proc.meminfo(total=1 << 40)  # every cgroup below is negligible
    for i in range(150):
        harness.tree.cgroup(
            f"w/c{i:03d}",
            current=(i + 1) << 20,
            stat={"anon": 1 << 20},
            populated=True,
            pressure=(0.1, 0.1, 0.1),
        )
    harness.load(always_acting(plugin("kill_by_memory_size_or_growth", cgroup="w/*", dry="true")))
    harness.tick()
    text = oolog.read_text()
    assert "... more cgroups not shown (set debug=true to see all 150)" in text
    examined = [c for c in harness.ctx.cgroups.values() if c.is_cached("_psi_io")]
    assert len(examined) == kill_base.DUMP_SCAN_LIMIT
    assert harness.kills and "w/c149" in harness.kills[0]


def test_context_dump_of_few_candidates_has_no_more_line(harness: Harness, oolog: Path) -> None:
    for i in range(3):
        harness.tree.cgroup(f"w/c{i}", current=(i + 1) << 30, stat={"anon": 1 << 20})
    harness.load(always_acting(plugin("kill_by_memory_size_or_growth", cgroup="w/*", dry="true")))
    harness.tick()
    text = oolog.read_text()
    assert text.count("name=w/c") == 3 and "more cgroups not shown" not in text


def test_context_dump_shows_exactly_ten_non_negligible_cgroups(
    harness: Harness, oolog: Path
) -> None:
    for i in range(12):
        harness.tree.cgroup(f"w/c{i:02d}", current=(i + 1) << 30, stat={"anon": 1 << 20})
    harness.load(always_acting(plugin("kill_by_memory_size_or_growth", cgroup="w/*", dry="true")))
    harness.tick()
    text = oolog.read_text()
    assert text.count("name=w/c") == kill_base.DUMP_LIMIT == 10
    assert "more cgroups not shown" in text
