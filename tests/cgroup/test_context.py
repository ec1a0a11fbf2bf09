"""The per-tick cgroup model (``oomd.cgroup.context``) on a fake tree and /proc.

Upstream reference: ``src/oomd/CgroupContextTest.cpp``, ``src/oomd/OomdContextTest.cpp``,
the ``protection_overage.fakeroot`` fixture, and reference sections 4.3 - 4.6 and 4.10.
"""

from __future__ import annotations

import os

import pytest

from oomd.cgroup.context import (
    CgroupContext,
    ContextParams,
    KillPreference,
    OomdContext,
)
from oomd.cgroup.fs import IoStat
from oomd.cgroup.iocost import DeviceType, IoCostCoeffs
from oomd.cgroup.path import CgroupPath, CgroupPattern
from oomd.cgroup.system import SystemContext
from oomd.cnum import INT64_MAX
from tests.support.tree import FakeProc, FakeTree

GiB = 1 << 30
KiB = 1024

# CgroupContextTest's io cost parameters.
IO_PARAMS = ContextParams(
    io_devices={"1:10": DeviceType.HDD, "1:11": DeviceType.SSD},
    hdd_coeffs=IoCostCoeffs(read_iops=6, readbw=5, write_iops=4, writebw=3, trim_iops=2, trimbw=1),
    ssd_coeffs=IoCostCoeffs(read_iops=1, readbw=2, write_iops=3, writebw=4, trim_iops=5, trimbw=6),
)


@pytest.fixture
def ctx(tree: FakeTree, proc: FakeProc) -> OomdContext:
    return OomdContext(tree.fs, SystemContext(proc.path))


@pytest.fixture
def io_ctx(tree: FakeTree, proc: FakeProc) -> OomdContext:
    return OomdContext(tree.fs, SystemContext(proc.path), params=IO_PARAMS)


def cg(ctx: OomdContext, rel: str) -> CgroupContext:
    """The context of an existing cgroup (fails the test if there is none)."""
    c = ctx.get(CgroupPath(ctx.cgroup_fs, rel))
    assert c is not None, rel
    return c


def patterns(ctx: OomdContext, *texts: str) -> list[CgroupPattern]:
    return [CgroupPattern(ctx.cgroup_fs, t) for t in texts]


def names(cgroups: list[CgroupContext]) -> list[str]:
    return [c.path.relative for c in cgroups]


def write_files(tree: FakeTree, rel: str, files: dict[str, str]) -> None:
    for filename, content in files.items():
        tree.write(rel, filename, content)


def recreate(tree: FakeTree, rel: str, **files: str) -> None:
    """Remove ``rel`` and create a new cgroup under the same name. The new one is
    built before the old one goes, so it cannot reuse the old inode number."""
    tmp = rel + ".recreated"
    tree.cgroup(tmp)
    write_files(tree, tmp, {k.replace("_", "."): v for k, v in files.items()})
    tree.remove(rel)
    os.rename(tree.path(tmp), tree.path(rel))


# --- DataLifeCycle ---------------------------------------------------------------

LIFECYCLE_TICK1 = {
    "cgroup.stat": "nr_descendants 2\nnr_dying_descendants 1\n",
    "io.pressure": (
        "some avg10=0.04 avg60=0.03 avg300=0.02 total=12345\n"
        "full avg10=0.03 avg60=0.02 avg300=0.01 total=23456\n"
    ),
    "io.stat": (
        "1:10 rbytes=1111111 wbytes=2222222 rios=33 wios=44 dbytes=5555555555 dios=6\n"
        "1:11 rbytes=2222222 wbytes=3333333 rios=44 wios=55 dbytes=6666666666 dios=7\n"
    ),
    "memory.current": "1122334455\n",
    "memory.high": "2233445566\n",
    "memory.high.tmp": "max 0\n",
    "memory.low": "11223344\n",
    "memory.max": "3344556677\n",
    "memory.min": "112233\n",
    "memory.pressure": (
        "some avg10=0.31 avg60=0.21 avg300=0.11 total=1234567\n"
        "full avg10=0.30 avg60=0.20 avg300=0.10 total=2345678\n"
    ),
    "memory.stat": "anon 123456789\nfile 12345678\nshmem 1234567\npgscan 4567890123\n",
    "memory.swap.current": "1234\n",
    "memory.swap.max": "1024\n",
}

LIFECYCLE_TICK2 = {
    "cgroup.stat": "nr_descendants 3\nnr_dying_descendants 2\n",
    "io.pressure": (
        "some avg10=0.04 avg60=0.03 avg300=0.02 total=12346\n"
        "full avg10=0.04 avg60=0.03 avg300=0.02 total=23457\n"
    ),
    "io.stat": (
        "1:10 rbytes=1111112 wbytes=2222223 rios=34 wios=45 dbytes=5555555556 dios=7\n"
        "1:11 rbytes=2222223 wbytes=3333334 rios=45 wios=56 dbytes=6666666667 dios=8\n"
    ),
    "memory.current": "1122334456\n",
    "memory.high": "2233445567\n",
    "memory.high.tmp": "max 0\n",
    "memory.low": "11223345\n",
    "memory.min": "112234\n",
    "memory.max": "3344556678\n",
    "memory.pressure": (
        "some avg10=0.31 avg60=0.21 avg300=0.11 total=1234568\n"
        "full avg10=0.31 avg60=0.21 avg300=0.11 total=2345679\n"
    ),
    "memory.stat": "anon 123456790\nfile 12345679\nshmem 1234568\npgscan 5678901234\n",
    "memory.swap.current": "1235\n",
    "memory.swap.max": "2048\n",
}


def snapshot(c: CgroupContext) -> dict[str, object]:
    """Every field DataLifeCycle reads."""
    stat = c.memory_stat()
    return {
        "children": [name for name, _ in c.children()],
        "mem_pressure": c.mem_pressure(),
        "io_pressure": c.io_pressure(),
        "memory_stat": None if stat is None else stat.as_dict(),
        "io_stat": c.io_stat(),
        "current_usage": c.current_usage(),
        "swap_usage": c.swap_usage(),
        "swap_max": c.swap_max(),
        "effective_swap_max": c.effective_swap_max(),
        "memory_low": c.memory_low(),
        "memory_min": c.memory_min(),
        "memory_high": c.memory_high(),
        "memory_high_tmp": c.memory_high_tmp(),
        "memory_max": c.memory_max(),
        "anon_usage": c.anon_usage(),
        "file_usage": c.memory_stat_value("file"),
        "shmem_usage": c.memory_stat_value("shmem"),
        "nr_dying_descendants": c.nr_dying_descendants(),
        "memory_protection": c.memory_protection(),
        "io_cost_cumulative": c.io_cost_cumulative(),
        "pg_scan_cumulative": c.pg_scan_cumulative(),
        "average_usage": c.average_usage(),
        "io_cost_rate": c.io_cost_rate(),
        "pg_scan_rate": c.pg_scan_rate(),
    }


def test_data_lifecycle_fields_cached_until_refresh(tree: FakeTree, io_ctx: OomdContext) -> None:
    """CgroupContextTest.DataLifeCycle: every field parses from its file; values are
    cached until refresh (even though every file and the children changed); after
    refresh the new values and the temporal deltas appear."""
    tree.cgroup("system.slice")
    write_files(tree, "system.slice", LIFECYCLE_TICK1)
    for svc in ["service1.service", "service2.service", "service3.service"]:
        tree.cgroup(f"system.slice/{svc}", memory_files=False)

    c = cg(io_ctx, "system.slice")
    first = snapshot(c)
    mem = c.mem_pressure()
    io = c.io_pressure()
    assert mem is not None and io is not None
    assert (mem.avg10, mem.avg60, mem.avg300) == pytest.approx((0.3, 0.2, 0.1))
    assert mem.total == 2345678
    assert (io.avg10, io.avg60, io.avg300) == pytest.approx((0.03, 0.02, 0.01))
    assert io.total == 23456
    assert {k: v for k, v in first.items() if k not in ("mem_pressure", "io_pressure")} == {
        "children": ["service1.service", "service2.service", "service3.service"],
        "memory_stat": {
            "anon": 123456789,
            "file": 12345678,
            "shmem": 1234567,
            "pgscan": 4567890123,
        },
        "io_stat": [
            IoStat("1:10", 1111111, 2222222, 33, 44, 5555555555, 6),
            IoStat("1:11", 2222222, 3333333, 44, 55, 6666666666, 7),
        ],
        "current_usage": 1122334455,
        "swap_usage": 1234,
        "swap_max": 1024,
        "effective_swap_max": 0,
        "memory_low": 11223344,
        "memory_min": 112233,
        "memory_high": 2233445566,
        "memory_high_tmp": INT64_MAX,
        "memory_max": 3344556677,
        "anon_usage": 123456789,
        "file_usage": 12345678,
        "shmem_usage": 1234567,
        "nr_dying_descendants": 1,
        "memory_protection": 11223344,
        "io_cost_cumulative": 45585556178,
        "pg_scan_cumulative": 4567890123,
        "average_usage": 280583613,  # int(1122334455 / 4.0)
        "io_cost_rate": 0,
        "pg_scan_rate": None,
    }

    # Change every file (and the children) mid-tick: nothing changes this tick.
    write_files(tree, "system.slice", LIFECYCLE_TICK2)
    tree.cgroup("system.slice/service4.service", memory_files=False)
    tree.remove("system.slice/service2.service")
    assert snapshot(c) == first

    io_ctx.refresh()
    assert cg(io_ctx, "system.slice") is c
    second = snapshot(c)
    mem = c.mem_pressure()
    io = c.io_pressure()
    assert mem is not None and io is not None
    assert (mem.avg10, mem.avg60, mem.avg300) == pytest.approx((0.31, 0.21, 0.11))
    assert mem.total == 2345679
    assert (io.avg10, io.avg60, io.avg300) == pytest.approx((0.04, 0.03, 0.02))
    assert io.total == 23457
    assert {k: v for k, v in second.items() if k not in ("mem_pressure", "io_pressure")} == {
        "children": ["service1.service", "service3.service", "service4.service"],
        "memory_stat": {
            "anon": 123456790,
            "file": 12345679,
            "shmem": 1234568,
            "pgscan": 5678901234,
        },
        "io_stat": [
            IoStat("1:10", 1111112, 2222223, 34, 45, 5555555556, 7),
            IoStat("1:11", 2222223, 3333334, 45, 56, 6666666667, 8),
        ],
        "current_usage": 1122334456,
        "swap_usage": 1235,
        "swap_max": 2048,
        "effective_swap_max": 0,
        "memory_low": 11223345,
        "memory_min": 112234,
        "memory_high": 2233445567,
        "memory_high_tmp": INT64_MAX,
        "memory_max": 3344556678,
        "anon_usage": 123456790,
        "file_usage": 12345679,
        "shmem_usage": 1234568,
        "nr_dying_descendants": 2,
        "memory_protection": 11223345,
        "io_cost_cumulative": 45585556220,
        "pg_scan_cumulative": 5678901234,
        "average_usage": 491021323,  # int(280583613 * 0.75 + 1122334456 / 4.0)
        "io_cost_rate": 45585556220 - 45585556178,
        "pg_scan_rate": 5678901234 - 4567890123,
    }


# --- per-tick caching ------------------------------------------------------------


def test_file_changed_mid_tick_is_not_reread_until_refresh(
    tree: FakeTree, ctx: OomdContext
) -> None:
    """Reference 4.3: the first read is memoized for the rest of the tick."""
    tree.cgroup("a", current=100, pressure=(10.0, 5.0, 1.0))
    c = cg(ctx, "a")
    assert c.current_usage() == 100
    p = c.mem_pressure()
    assert p is not None and p.avg10 == pytest.approx(10.0)
    tree.set_current("a", 200)
    tree.set_pressure("a", 90.0)
    assert c.current_usage() == 100
    p = c.mem_pressure()
    assert p is not None and p.avg10 == pytest.approx(10.0)
    ctx.refresh()
    c = cg(ctx, "a")
    assert c.current_usage() == 200
    p = c.mem_pressure()
    assert p is not None and p.avg10 == pytest.approx(90.0)


def test_some_and_full_come_from_one_read(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.3: one tick sees one snapshot of a PSI file, for both lines."""
    tree.cgroup("a", pressure=(1.0, 1.0, 1.0))
    c = cg(ctx, "a")
    assert c.mem_pressure() is not None
    tree.write(
        "a",
        "memory.pressure",
        "some avg10=77.00 avg60=0.00 avg300=0.00 total=0\n"
        "full avg10=66.00 avg60=0.00 avg300=0.00 total=0\n",
    )
    some = c.mem_pressure_some()
    assert some is not None and some.avg10 == pytest.approx(1.0)


def test_failed_read_is_cached_for_the_tick(tree: FakeTree, ctx: OomdContext) -> None:
    """Module docstring: a failed read is cached for the tick (one consistent
    snapshot); the file is seen from the next tick on."""
    tree.cgroup("a")
    c = cg(ctx, "a")
    assert c.current_usage() is None
    assert c.memory_stat() is None
    tree.set_current("a", 123)
    tree.write("a", "memory.stat", "anon 5\n")
    assert c.current_usage() is None
    assert c.memory_stat() is None
    ctx.refresh()
    c = cg(ctx, "a")
    assert c.current_usage() == 123
    assert c.anon_usage() == 5


def test_rarely_read_fields_are_cached_for_the_tick_like_the_others(
    tree: FakeTree, ctx: OomdContext
) -> None:
    """The fields outside the context's own slots (kept in a record made on first use,
    bench/README.md) are memoized per tick exactly like the ones inside."""
    tree.cgroup("a")
    tree.set_current("a", 5 << 20)
    tree.write("a", "memory.swap.current", "7\n")
    c = cg(ctx, "a")
    assert c.current_usage() == 5 << 20
    assert not c.is_cached("swap_usage")
    assert c.swap_usage() == 7
    assert c.is_cached("swap_usage") and c.is_cached("current_usage")
    tree.write("a", "memory.swap.current", "9\n")
    assert c.swap_usage() == 7
    ctx.refresh()
    c = cg(ctx, "a")
    assert not c.is_cached("swap_usage") and not c.is_cached("current_usage")
    assert c.swap_usage() == 9


def test_same_object_while_touched_every_tick(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.3: one cgroup object per path, kept across ticks."""
    tree.cgroup("a")
    c = cg(ctx, "a")
    for _ in range(3):
        ctx.refresh()
        assert cg(ctx, "a") is c
        assert ctx.resolve(patterns(ctx, "a")) == [c]


# --- root ------------------------------------------------------------------------


def test_root_usage_from_meminfo(tree: FakeTree, proc: FakeProc, ctx: OomdContext) -> None:
    """Reference 4.4/4.5 (CgroupContextTest.MonitorRootHost): root usage is
    MemTotal - MemFree from /proc/meminfo, not a memory.current file."""
    proc.meminfo(total=16 * GiB, free=6 * GiB)
    tree.write("", "memory.current", "1\n")
    root = ctx.root()
    assert root is not None
    assert root.is_root
    assert root.current_usage() == 10 * GiB


def test_root_pressure_from_proc_pressure(tree: FakeTree, proc: FakeProc, ctx: OomdContext) -> None:
    """Reference 4.4/4.5: root pressures come from /proc/pressure/{memory,io}."""
    proc.pressure("memory", 42.0, 21.0, 7.0)
    proc.pressure("io", 3.0, 2.0, 1.0)
    tree.set_pressure("", 99.0)
    root = ctx.root()
    assert root is not None
    mem = root.mem_pressure()
    io = root.io_pressure()
    assert mem is not None and io is not None
    assert (mem.avg10, mem.avg60, mem.avg300) == pytest.approx((42.0, 21.0, 7.0))
    assert (io.avg10, io.avg60, io.avg300) == pytest.approx((3.0, 2.0, 1.0))
    some = root.mem_pressure_some()
    assert some is not None and some.avg10 == pytest.approx(42.0)


def test_root_memory_pressure_falls_back_to_mempressure(proc: FakeProc, ctx: OomdContext) -> None:
    """Reference 4.4: the root falls back to /proc/mempressure."""
    (proc.root / "pressure" / "memory").unlink()
    (proc.root / "mempressure").write_text("aggr 1\nsome 1.00 2.00 3.00\nfull 4.00 5.00 6.00\n")
    root = ctx.root()
    assert root is not None
    mem = root.mem_pressure()
    assert mem is not None and mem.avg10 == pytest.approx(4.0)


def test_root_protection_is_its_usage(proc: FakeProc, ctx: OomdContext) -> None:
    """Reference 4.5/4.6: root memory protection = usage, so effective usage is 0."""
    proc.meminfo(total=8 * GiB, free=2 * GiB)
    root = ctx.root()
    assert root is not None
    assert root.memory_protection() == 6 * GiB
    assert root.effective_usage() == 0


def test_root_reads_its_own_cgroup_stat(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.4 / NrDyingDescendantsTest.RootCgroup: the root reads the fs
    root's cgroup.stat."""
    tree.cgroup("", nr_dying=7, memory_files=False)
    root = ctx.root()
    assert root is not None
    assert root.nr_dying_descendants() == 7


def test_root_via_slash_pattern_is_the_same_object(tree: FakeTree, ctx: OomdContext) -> None:
    """OomdContextTest.CgroupKeyRoot: "/" is cached as the root path."""
    (root,) = ctx.resolve(patterns(ctx, "/"))
    assert root.is_root
    assert root.path == CgroupPath(tree.fs, "")
    assert ctx.root() is root
    assert list(ctx.cgroups) == [tree.fs]


def test_root_swap_values(proc: FakeProc, ctx: OomdContext) -> None:
    """Reference 4.5: root effective swap max = total, free = total - used,
    util = used / total."""
    proc.swaps((300 * KiB, 50 * KiB), (100 * KiB, 50 * KiB))
    root = ctx.root()
    assert root is not None
    assert root.effective_swap_max() == 400 * KiB
    assert root.effective_swap_free() == 300 * KiB
    assert root.effective_swap_util_pct() == pytest.approx(0.25)


def test_root_without_swap_has_zero_util(ctx: OomdContext) -> None:
    """CgroupContextTest.EffectiveSwapUtilPctNoSwap: no swap -> 0, not a division error."""
    root = ctx.root()
    assert root is not None
    assert root.effective_swap_util_pct() == 0
    assert root.effective_swap_max() == 0
    assert root.effective_swap_free() == 0


# --- resolve() -------------------------------------------------------------------


def test_resolve_multiple_patterns_dedupes(tree: FakeTree, ctx: OomdContext) -> None:
    """OomdContextTest.GetMultiple: files and missing paths are dropped; "*" gives the
    same cgroups; duplicates collapse; empty inputs give nothing."""
    for name in ["dir1", "dir2", "dir3"]:
        tree.cgroup(name)
    tree.write("", "file1", "x\n")
    all5 = ("dir1", "dir2", "dir3", "file1", "NOT_EXIST")
    got = ctx.resolve(patterns(ctx, *all5))
    assert names(got) == ["dir1", "dir2", "dir3"]
    assert got == [cg(ctx, "dir1"), cg(ctx, "dir2"), cg(ctx, "dir3")]
    assert all(
        a is b for a, b in zip(got, [cg(ctx, n) for n in ("dir1", "dir2", "dir3")], strict=True)
    )
    assert ctx.resolve(patterns(ctx, "*")) == got
    both = ctx.resolve(patterns(ctx, *all5, "*"))
    assert both == got
    assert len({id(c) for c in both}) == 3
    assert ctx.resolve(patterns(ctx, "file1", "NOT_EXIST")) == []
    assert ctx.resolve([]) == []


def test_resolve_sorts_by_path(tree: FakeTree, ctx: OomdContext) -> None:
    """Module docstring: results sorted by path whatever the pattern order."""
    for name in ["c", "b/y", "b/x", "a"]:
        tree.cgroup(name)
    got = ctx.resolve(patterns(ctx, "c", "b/*", "*"))
    assert names(got) == ["a", "b", "b/x", "b/y", "c"]


def test_resolve_distinct_inodes(tree: FakeTree, ctx: OomdContext) -> None:
    """CgroupContextTest.UniqueId: distinct cgroups have distinct non-zero ids."""
    for name in "ABCD":
        tree.cgroup(name)
    got = ctx.resolve(patterns(ctx, "*"))
    ids = {c.inode for c in got}
    assert len(ids) == 4
    assert 0 not in ids
    for c in got:
        assert c.inode == os.stat(c.path.absolute).st_ino


def test_resolve_ruleset_patterns_relative_to_ruleset_cgroup(
    tree: FakeTree, ctx: OomdContext
) -> None:
    """OomdContextTest.GetRulesetCgroups: ruleset patterns resolve under the active
    ruleset cgroup; "/" means the ruleset cgroup itself."""
    tree.cgroup("dir1")
    tree.cgroup("dir2/dir3")
    ctx.ruleset_cgroup = CgroupPath(tree.fs, "dir2")
    got = ctx.resolve(patterns(ctx, "dir1"), patterns(ctx, "dir3"))
    assert names(got) == ["dir1", "dir2/dir3"]
    assert names(ctx.resolve([], patterns(ctx, "/"))) == ["dir2"]
    assert ctx.resolve([], patterns(ctx, "dir2")) == []


def test_resolve_ruleset_patterns_ignored_without_ruleset_cgroup(
    tree: FakeTree, ctx: OomdContext
) -> None:
    """Reference 4.2 (HEAD): without an active ruleset cgroup, ruleset patterns give
    nothing."""
    tree.cgroup("dir3")
    assert ctx.resolve([], patterns(ctx, "dir3")) == []
    assert names(ctx.resolve(patterns(ctx, "dir3"), patterns(ctx, "dir3"))) == ["dir3"]


def test_resolve_is_a_snapshot_for_the_tick(tree: FakeTree, ctx: OomdContext) -> None:
    """Module docstring: resolution is cached for the tick; a cgroup created mid-tick
    appears from the next tick."""
    tree.cgroup("a")
    assert names(ctx.resolve(patterns(ctx, "*"))) == ["a"]
    tree.cgroup("b")
    assert names(ctx.resolve(patterns(ctx, "*"))) == ["a"]
    ctx.refresh()
    assert names(ctx.resolve(patterns(ctx, "*"))) == ["a", "b"]


def test_get_missing_or_file_is_none(tree: FakeTree, ctx: OomdContext) -> None:
    """OomdContextTest.MoveConstructor / GetMultiple: nothing for missing paths or files."""
    tree.write("", "file1", "x\n")
    assert ctx.get(CgroupPath(tree.fs, "asdf")) is None
    assert ctx.get(CgroupPath(tree.fs, "file1")) is None
    assert ctx.cgroups == {}


def test_cache_keys_are_the_added_cgroups(tree: FakeTree, ctx: OomdContext) -> None:
    """OomdContextTest.CgroupKeys: the cache holds exactly the cgroups asked for."""
    tree.cgroup("asdf")
    tree.cgroup("wow")
    tree.cgroup("other")
    assert ctx.cgroups == {}
    cg(ctx, "asdf")
    cg(ctx, "wow")
    assert set(ctx.cgroups) == {f"{tree.fs}/asdf", f"{tree.fs}/wow"}


# --- lifecycle across ticks ------------------------------------------------------


def test_recreated_cgroup_is_a_new_object_without_history(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.3 (CgroupContextTest.DistinguishRecreate): a cgroup removed and
    re-created under the same name is a new object (new inode, no history)."""
    tree.cgroup("system.slice", current=400)
    old = cg(ctx, "system.slice")
    assert old.average_usage() == 100
    recreate(tree, "system.slice", memory_current="800\n")
    ctx.refresh()
    new = cg(ctx, "system.slice")
    assert new is not old
    assert new.inode != old.inode
    assert new.is_valid()
    assert not old.is_valid()
    assert new.average_usage() == 200  # first sighting: current / 4


def test_recreated_cgroup_old_context_reads_nothing(tree: FakeTree, ctx: OomdContext) -> None:
    """CgroupContextTest.DistinguishRecreate: after the cgroup is removed and a new one
    created under the same name, the old context must not read the new cgroup's files
    (upstream reads through the old directory fd and gets INVALID_CGROUP)."""
    tree.cgroup("system.slice", current=123)
    old = cg(ctx, "system.slice")
    assert old.current_usage() == 123
    recreate(tree, "system.slice", memory_current="234\n")
    ctx.refresh()
    assert not old.is_valid()
    new = cg(ctx, "system.slice")
    assert new is not old and new.current_usage() == 234
    assert old.current_usage() is None


def test_recreated_mid_tick_is_detected_by_is_valid(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.10: upstream reads through a directory fd, so a cgroup re-created
    mid-tick reads as absent. We read by path (no fd per cgroup: 10,000 cgroups would
    need 10,000 fds), so uncached fields may come from the new cgroup until the next
    resolve; is_valid(), checked before every kill, tells the difference
    (docs/compatibility.md)."""
    tree.cgroup("a", current=100, low=10)
    old = cg(ctx, "a")
    assert old.current_usage() == 100
    assert old.is_valid()
    recreate(tree, "a", memory_current="5000\n", memory_low="4000\n")
    assert not old.is_valid()


def test_cgroup_untouched_for_a_tick_is_forgotten(tree: FakeTree, ctx: OomdContext) -> None:
    """Module docstring: cgroups nobody looked at in the previous tick are forgotten at
    refresh (and lose their history)."""
    tree.cgroup("a", current=400)
    tree.cgroup("b", current=400)
    a = cg(ctx, "a")
    b = cg(ctx, "b")
    assert a.average_usage() == 100
    assert b.average_usage() == 100
    ctx.refresh()  # tick 1: only b is touched
    assert cg(ctx, "b") is b
    assert b.average_usage() == 175
    assert f"{tree.fs}/a" in ctx.cgroups  # still there during the untouched tick
    ctx.refresh()  # tick 2: a was not used in tick 1
    assert f"{tree.fs}/a" not in ctx.cgroups
    assert f"{tree.fs}/b" in ctx.cgroups  # used in tick 1: kept
    a2 = cg(ctx, "a")
    assert a2 is not a
    assert a2.average_usage() == 100


def test_children_listing_touches_children(tree: FakeTree, ctx: OomdContext) -> None:
    """Children adopted through the parent stay cached like resolved cgroups."""
    tree.cgroup("p/c1")
    tree.cgroup("p/c2")
    kids = ctx.children(cg(ctx, "p"))
    assert names(kids) == ["p/c1", "p/c2"]
    assert kids[0] is cg(ctx, "p/c1")


# --- vanishing mid-tick ----------------------------------------------------------


def test_cgroup_vanishing_mid_tick_reads_none_and_never_raises(
    tree: FakeTree, io_ctx: OomdContext
) -> None:
    """Reference 4.10: a cgroup that disappears mid-tick gives absent readings; no
    exception; at the next refresh it is gone."""
    tree.cgroup("a/b", current=100, swap=1, swap_max=10, populated=True, oom_group=True, nr_dying=1)
    tree.cgroup("a", current=100, swap=1, swap_max=10)
    c = cg(io_ctx, "a/b")
    tree.remove("a")
    assert c.current_usage() is None
    assert c.memory_low() is None
    assert c.memory_min() is None
    assert c.memory_high() is None
    assert c.memory_max() is None
    assert c.memory_high_tmp() is None
    assert c.swap_usage() is None
    assert c.swap_max() is None
    assert c.memory_stat() is None
    assert c.anon_usage() is None
    assert c.mem_pressure() is None
    assert c.mem_pressure_some() is None
    assert c.io_pressure() is None
    assert c.io_pressure_some() is None
    assert c.io_stat() is None
    assert c.cgroup_stat() is None
    assert c.nr_dying_descendants() is None
    assert c.is_populated() is None
    assert c.oom_group() is None
    assert c.pids() is None
    assert c.controllers() is None
    assert c.children() == []
    assert c.kill_preference() == KillPreference.NORMAL
    assert not c.has_xattr("trusted.oomd_prefer")
    assert c.raw_protection() is None
    assert c.memory_protection() is None
    assert c.effective_usage() is None
    assert c.average_usage() is None
    assert c.memory_growth() is None
    assert c.io_cost_cumulative() is None
    assert c.io_cost_rate() is None
    assert c.pg_scan_cumulative() is None
    assert c.pg_scan_rate() is None
    assert c.effective_swap_max() is None
    assert c.effective_swap_free() is None
    assert c.effective_swap_util_pct() is None
    assert not c.is_valid()
    io_ctx.refresh()
    assert io_ctx.get(CgroupPath(tree.fs, "a/b")) is None
    assert io_ctx.resolve(patterns(io_ctx, "a/*", "*")) == []
    io_ctx.refresh()
    assert io_ctx.cgroups == {}


def test_cached_values_survive_vanishing_mid_tick(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.3: values already read this tick stay (one snapshot per tick)."""
    tree.cgroup("a", current=100)
    c = cg(ctx, "a")
    assert c.current_usage() == 100
    tree.remove("a")
    assert c.current_usage() == 100
    assert cg(ctx, "a") is c


def test_parent_vanishing_mid_tick_makes_derived_values_none(
    tree: FakeTree, ctx: OomdContext
) -> None:
    """Reference 4.10: derived values needing a vanished parent are absent."""
    tree.cgroup("a", current=100, low=50, swap=0, swap_max=100)
    tree.cgroup("a/b", current=100, low=50, swap=0, swap_max=100)
    c = cg(ctx, "a/b")
    assert c.current_usage() == 100
    assert c.swap_max() == 100
    assert c.swap_usage() == 0
    assert c.memory_low() == 50
    assert c.memory_min() == 0
    tree.remove("a")
    assert c.memory_protection() is None
    assert c.effective_usage() is None
    assert c.effective_swap_max() is None
    assert c.effective_swap_free() is None
    assert c.effective_swap_util_pct() is None


# --- memory protection -----------------------------------------------------------


def test_memory_protection_upstream_cases(tree: FakeTree, ctx: OomdContext) -> None:
    """CgroupContextTest.MemoryProtection: top-level gets its raw protection;
    under-committed siblings get what they claim; sibling sum 0 -> 0; over-committed
    siblings split the parent's protection in proportion."""
    tree.cgroup("A", current=10000, low=2000, min=2500)
    tree.cgroup("A/B", current=1000, low=250, min=200)
    tree.cgroup("A/B/C", current=0, low=250, min=200)
    tree.cgroup("A/B/D", current=1000, low=0, min=0)
    tree.cgroup("A/E", current=250, low=1000, min=200)
    tree.cgroup("A/E/F", current=2000, low=2000, min=2000)
    tree.cgroup("A/E/G", current=3000, low=3000, min=3000)
    assert cg(ctx, "A").memory_protection() == 2500
    assert cg(ctx, "A/B").memory_protection() == 250
    assert cg(ctx, "A/E").memory_protection() == 250
    assert cg(ctx, "A/B/C").memory_protection() == 0
    assert cg(ctx, "A/B/D").memory_protection() == 0
    assert cg(ctx, "A/E/F").memory_protection() == 100
    assert cg(ctx, "A/E/G").memory_protection() == 150


def build_protection_overage(tree: FakeTree) -> None:
    """Upstream's ``protection_overage.fakeroot`` fixture (memory.min 0 everywhere)."""
    tree.cgroup("", high="max", max="max", memory_files=False)
    tree.cgroup("A", current=4 * GiB, low=2 * GiB, min=0)
    tree.cgroup("A/A1", current=2 * GiB, low=1 * GiB, min=0)
    tree.cgroup("A/A2", current=2 * GiB, low=4 * GiB, min=0)
    tree.cgroup("B", current=4 * GiB, low=1 * GiB, min=0)
    tree.cgroup("B/B1", current=2 * GiB, low=1 * GiB, min=0)
    tree.cgroup("B/B2", current=2 * GiB, low=4 * GiB, min=0)
    tree.cgroup("C", current=6 * GiB, low=5 * GiB, min=0)
    tree.cgroup("C/C1", current=6 * GiB, low=5 * GiB, min=0)
    for rel in ["A", "A/A1", "A/A2", "B", "B/B1", "B/B2", "C", "C/C1"]:
        tree.write(
            rel,
            "memory.pressure",
            "some avg10=1.11 avg60=2.22 avg300=3.33 total=134829384400\n"
            "full avg10=4.44 avg60=5.55 avg300=6.66 total=128544748770\n",
        )


def test_memory_protection_overage_fixture(tree: FakeTree, ctx: OomdContext) -> None:
    """Upstream OomdTest.CalculateProtectionOverageContrived on the
    protection_overage fixture: P(A1) = trunc(1G * min(1, 2G / 3G)) etc."""
    build_protection_overage(tree)
    # Resolve the same way upstream did ("*/*" and "*").
    ctx.resolve(patterns(ctx, "*/*", "*"))
    expected = {
        "A": 2 * GiB,
        "A/A1": 715827882,
        "A/A2": 1431655765,
        "B": 1 * GiB,
        "B/B1": 357913941,
        "B/B2": 715827882,
        "C": 5 * GiB,
        "C/C1": 5 * GiB,
    }
    assert {rel: cg(ctx, rel).memory_protection() for rel in expected} == expected


def test_effective_usage_on_overage_fixture(tree: FakeTree, ctx: OomdContext) -> None:
    """OomdTest.CalculateProtectionOverageContrived: overage (effective usage) A = 2G,
    B = 3G, and B1 > B2 == A1 > A2."""
    build_protection_overage(tree)
    eff = {
        rel: cg(ctx, rel).effective_usage() for rel in ["A", "A/A1", "A/A2", "B", "B/B1", "B/B2"]
    }
    assert eff == {
        "A": 2 * GiB,
        "A/A1": 2 * GiB - 715827882,
        "A/A2": 2 * GiB - 1431655765,
        "B": 3 * GiB,
        "B/B1": 2 * GiB - 357913941,
        "B/B2": 2 * GiB - 715827882,
    }
    ranked = sorted(["A/A1", "A/A2", "B/B1", "B/B2"], key=lambda rel: eff[rel] or 0)
    assert ranked[0] == "A/A2"
    assert ranked[3] == "B/B1"
    assert eff["B/B2"] == eff["A/A1"]
    assert cg(ctx, "C/C1").effective_usage() == GiB


def test_memory_protection_absent_sibling_counts_zero(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.6: children whose raw protection is absent count 0 in the sum."""
    tree.cgroup("p", current=1000, low=100)
    tree.cgroup("p/a", current=1000, low=200)
    tree.cgroup("p/b", current=1000, low=200)
    (tree.path("p/b") / "memory.low").unlink()
    # S = 200 (b absent) -> a gets min(1, 100/200) * 200 = 100
    assert cg(ctx, "p/a").memory_protection() == 100
    assert cg(ctx, "p/b").memory_protection() is None


def test_memory_protection_raw_uses_max_of_min_and_low_capped_by_usage(
    tree: FakeTree, ctx: OomdContext
) -> None:
    """Reference 4.6: R = min(current, max(memory.min, memory.low))."""
    tree.cgroup("a", current=500, low=100, min=300)
    tree.cgroup("b", current=50, low=100, min=0)
    assert cg(ctx, "a").memory_protection() == 300
    assert cg(ctx, "b").memory_protection() == 50
    assert cg(ctx, "a").effective_usage() == 200
    assert cg(ctx, "b").effective_usage() == 0


def test_memory_protection_missing_files_is_none(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.6: raw protection is absent if any input is absent."""
    tree.cgroup("a", current=500, memory_files=False)
    assert cg(ctx, "a").memory_protection() is None
    assert cg(ctx, "a").effective_usage() is None


# --- average usage and growth ----------------------------------------------------


def test_average_usage_first_then_decayed(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.6 / DataLifeCycle: first = current/4, then
    trunc(prev * 0.75 + current / 4)."""
    tree.cgroup("a", current=1000)
    assert cg(ctx, "a").average_usage() == 250
    assert cg(ctx, "a").memory_growth() == pytest.approx(4.0)
    ctx.refresh()
    tree.set_current("a", 1001)
    assert cg(ctx, "a").average_usage() == 437  # int(187.5 + 250.25)
    ctx.refresh()
    tree.set_current("a", 3)
    assert cg(ctx, "a").average_usage() == 328  # int(327.75 + 0.75)
    assert cg(ctx, "a").memory_growth() == pytest.approx(3 / 328)


def test_average_usage_history_lost_if_not_computed_on_a_tick(
    tree: FakeTree, ctx: OomdContext
) -> None:
    """Reference 4.6: history survives only if computed every tick; a tick where the
    cgroup was used but the average not computed restarts it at current/4."""
    tree.cgroup("a", current=1000)
    assert cg(ctx, "a").average_usage() == 250
    ctx.refresh()
    assert cg(ctx, "a").current_usage() == 1000  # touched, average not computed
    ctx.refresh()
    assert cg(ctx, "a").average_usage() == 250


def test_memory_growth_zero_usage_does_not_divide_by_zero(tree: FakeTree, ctx: OomdContext) -> None:
    """CgroupContextTest.MemoryGrowthDoesntDivideByZero: average 0 -> growth 0."""
    tree.cgroup("system.slice", current=0)
    c = cg(ctx, "system.slice")
    assert c.average_usage() == 0
    assert c.memory_growth() == 0


def test_average_and_growth_absent_without_usage(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.6: absent if current usage is absent."""
    tree.cgroup("a")
    assert cg(ctx, "a").average_usage() is None
    assert cg(ctx, "a").memory_growth() is None


def test_root_average_usage_uses_meminfo(proc: FakeProc, ctx: OomdContext) -> None:
    """Reference 4.5/4.6: the root's average tracks MemTotal - MemFree."""
    proc.meminfo(total=8 * GiB, free=4 * GiB)
    root = ctx.root()
    assert root is not None
    assert root.average_usage() == GiB


# --- io cost ---------------------------------------------------------------------


def test_io_cost_cumulative_dot_product_and_rate(tree: FakeTree, io_ctx: OomdContext) -> None:
    """CgroupContextTest.DataLifeCycle: cost = coefficient dot product per configured
    device; rate 0 on the first tick, then the delta."""
    tree.cgroup("a")
    tree.write("a", "io.stat", LIFECYCLE_TICK1["io.stat"])
    c = cg(io_ctx, "a")
    assert c.io_cost_cumulative() == 45585556178
    assert c.io_cost_rate() == 0
    io_ctx.refresh()
    tree.write("a", "io.stat", LIFECYCLE_TICK2["io.stat"])
    assert cg(io_ctx, "a").io_cost_cumulative() == 45585556220
    assert cg(io_ctx, "a").io_cost_rate() == 42


def test_io_cost_ignores_unconfigured_devices(tree: FakeTree, proc: FakeProc) -> None:
    """Reference 4.6: only devices given with --device count; none matching -> 0."""
    tree.cgroup("a")
    tree.write("a", "io.stat", LIFECYCLE_TICK1["io.stat"])
    only_ssd = ContextParams(io_devices={"1:11": DeviceType.SSD}, ssd_coeffs=IO_PARAMS.ssd_coeffs)
    ctx = OomdContext(tree.fs, SystemContext(proc.path), params=only_ssd)
    expected = 2222222 * 2 + 3333333 * 4 + 44 * 1 + 55 * 3 + 6666666666 * 6 + 7 * 5
    assert cg(ctx, "a").io_cost_cumulative() == expected
    none = OomdContext(tree.fs, SystemContext(proc.path))
    assert cg(none, "a").io_cost_cumulative() == 0


def test_io_cost_default_coefficients(tree: FakeTree, proc: FakeProc) -> None:
    """Reference 1.6: default SSD coefficients apply when none are given."""
    tree.cgroup("a")
    tree.write("a", "io.stat", "8:0 rbytes=1000 wbytes=0 rios=10 wios=0 dbytes=0 dios=0\n")
    params = ContextParams(io_devices={"8:0": DeviceType.SSD})
    ctx = OomdContext(tree.fs, SystemContext(proc.path), params=params)
    c = params.ssd_coeffs
    assert cg(ctx, "a").io_cost_cumulative() == pytest.approx(10 * c.read_iops + 1000 * c.readbw)


def test_io_cost_absent_without_io_stat(tree: FakeTree, io_ctx: OomdContext) -> None:
    """Reference 4.4: a missing or malformed io.stat makes the cost absent."""
    tree.cgroup("a")
    tree.cgroup("b")
    tree.write("b", "io.stat", "1:10 rbytes=1\n")
    for rel in ["a", "b"]:
        assert cg(io_ctx, rel).io_cost_cumulative() is None
        assert cg(io_ctx, rel).io_cost_rate() is None


def test_io_cost_rate_history_lost_if_not_computed(tree: FakeTree, io_ctx: OomdContext) -> None:
    """Reference 4.3: temporal values are archived only if computed the previous tick."""
    tree.cgroup("a")
    tree.write("a", "io.stat", LIFECYCLE_TICK1["io.stat"])
    assert cg(io_ctx, "a").io_cost_cumulative() == 45585556178
    io_ctx.refresh()
    assert cg(io_ctx, "a").current_usage() is None  # touched only
    io_ctx.refresh()
    tree.write("a", "io.stat", LIFECYCLE_TICK2["io.stat"])
    assert cg(io_ctx, "a").io_cost_rate() == 0


# --- pg scan ---------------------------------------------------------------------


def test_pg_scan_rate_absent_first_then_delta(tree: FakeTree, ctx: OomdContext) -> None:
    """CgroupContextTest.DataLifeCycle: pg_scan_rate is absent on the first tick."""
    tree.cgroup("a", stat={"pgscan": 100})
    assert cg(ctx, "a").pg_scan_cumulative() == 100
    assert cg(ctx, "a").pg_scan_rate() is None
    ctx.refresh()
    tree.cgroup("a", stat={"pgscan": 175})
    assert cg(ctx, "a").pg_scan_cumulative() == 175
    assert cg(ctx, "a").pg_scan_rate() == 75


def test_pg_scan_rate_history_lost_if_not_computed(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.3: a tick without the computation drops the previous value."""
    tree.cgroup("a", stat={"pgscan": 100})
    assert cg(ctx, "a").pg_scan_cumulative() == 100
    ctx.refresh()
    assert cg(ctx, "a").current_usage() is None
    ctx.refresh()
    assert cg(ctx, "a").pg_scan_rate() is None


def test_pg_scan_missing_key_or_file_is_none(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.6/4.10 (upstream crashes): here absent."""
    tree.cgroup("a", stat={"anon": 1})
    tree.cgroup("b")
    for rel in ["a", "b"]:
        assert cg(ctx, rel).pg_scan_cumulative() is None
        assert cg(ctx, rel).pg_scan_rate() is None


# --- effective swap --------------------------------------------------------------


def test_effective_swap_max_min_over_ancestors(
    tree: FakeTree, proc: FakeProc, ctx: OomdContext
) -> None:
    """CgroupContextTest.EffectiveSwapMax: min of own swap.max and ancestors'."""
    proc.swaps((3000 * KiB, 0))
    tree.cgroup("system.slice", swap_max=1000 * KiB)
    tree.cgroup("system.slice/oomd.service", swap_max=2000 * KiB)
    tree.cgroup("big.slice", swap_max="max")
    assert cg(ctx, "system.slice/oomd.service").effective_swap_max() == 1000 * KiB
    assert cg(ctx, "system.slice").effective_swap_max() == 1000 * KiB
    assert cg(ctx, "big.slice").effective_swap_max() == 3000 * KiB


def swap_tree(tree: FakeTree, proc: FakeProc) -> None:
    """CgroupContextTest.EffectiveSwapFree/UtilPct fixture, scaled to KiB because
    /proc/swaps counts KiB (total 400, used 100)."""
    proc.swaps((400 * KiB, 100 * KiB))
    tree.cgroup("system.slice", swap_max="max", swap=100 * KiB)
    tree.cgroup("system.slice/oomd.service", swap_max=200 * KiB, swap=100 * KiB)
    tree.cgroup("foo.slice", swap_max=0, swap=0)


def test_effective_swap_free(tree: FakeTree, proc: FakeProc, ctx: OomdContext) -> None:
    """CgroupContextTest.EffectiveSwapFree: min over the hierarchy of max - usage,
    root = total - used."""
    swap_tree(tree, proc)
    assert cg(ctx, "system.slice").effective_swap_free() == 300 * KiB
    assert cg(ctx, "system.slice/oomd.service").effective_swap_free() == 100 * KiB
    assert cg(ctx, "foo.slice").effective_swap_free() == 0


def test_effective_swap_free_may_be_negative(
    tree: FakeTree, proc: FakeProc, ctx: OomdContext
) -> None:
    """Reference 4.6: effective swap free may be negative (usage above a lowered max)."""
    proc.swaps((400 * KiB, 100 * KiB))
    tree.cgroup("a", swap_max=10 * KiB, swap=30 * KiB)
    assert cg(ctx, "a").effective_swap_free() == -20 * KiB


def test_effective_swap_util_pct(tree: FakeTree, proc: FakeProc, ctx: OomdContext) -> None:
    """CgroupContextTest.EffectiveSwapUtilPct: max over the hierarchy of usage/max;
    swap.max 0 -> 0."""
    swap_tree(tree, proc)
    assert cg(ctx, "system.slice").effective_swap_util_pct() == 0.25
    assert cg(ctx, "system.slice/oomd.service").effective_swap_util_pct() == 0.5
    assert cg(ctx, "foo.slice").effective_swap_util_pct() == 0


def test_effective_swap_util_zero_max_does_not_consult_parent(
    tree: FakeTree, ctx: OomdContext
) -> None:
    """Reference 4.6: own swap.max == 0 -> 0 immediately (parent not consulted, so a
    parent without swap files does not make it absent)."""
    tree.cgroup("p")
    tree.cgroup("p/c", swap_max=0, swap=0)
    assert cg(ctx, "p").effective_swap_util_pct() is None
    assert cg(ctx, "p/c").effective_swap_util_pct() == 0


def test_effective_swap_missing_files_are_none(
    tree: FakeTree, proc: FakeProc, ctx: OomdContext
) -> None:
    """Reference 4.4: a cgroup without memory.swap.* files has no effective swap values."""
    proc.swaps((400 * KiB, 100 * KiB))
    tree.cgroup("a")
    c = cg(ctx, "a")
    assert c.effective_swap_max() is None
    assert c.effective_swap_free() is None
    assert c.effective_swap_util_pct() is None


# --- kill preference -------------------------------------------------------------


@pytest.mark.parametrize(
    ("xattrs", "expected"),
    [
        ((), KillPreference.NORMAL),
        (("trusted.oomd_prefer",), KillPreference.PREFER),
        (("user.oomd_prefer",), KillPreference.PREFER),
        (("trusted.oomd_avoid",), KillPreference.AVOID),
        (("user.oomd_avoid",), KillPreference.AVOID),
        (("trusted.oomd_prefer", "trusted.oomd_avoid"), KillPreference.PREFER),
        (("user.oomd_prefer", "trusted.oomd_avoid"), KillPreference.PREFER),
        (("trusted.oomd_avoid", "user.oomd_prefer"), KillPreference.PREFER),
        (("user.oomd_avoid", "user.oomd_prefer"), KillPreference.PREFER),
        (("user.something_else",), KillPreference.NORMAL),
        (("trusted.oomd_ooms",), KillPreference.NORMAL),
    ],
)
def test_kill_preference_from_xattrs(
    tree: FakeTree, ctx: OomdContext, xattrs: tuple[str, ...], expected: KillPreference
) -> None:
    """Reference 4.4 (kill_preference): presence of trusted/user oomd_prefer or
    oomd_avoid; prefer wins over avoid."""
    tree.cgroup("a")
    for name in xattrs:
        tree.set_xattr("a", name)
    assert cg(ctx, "a").kill_preference() == expected


def test_kill_preference_value_is_irrelevant(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.4: presence only - the value does not matter."""
    tree.cgroup("a")
    tree.set_xattr("a", "trusted.oomd_avoid", b"0")
    assert cg(ctx, "a").kill_preference() == KillPreference.AVOID


def test_kill_preference_cached_for_the_tick(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.3: xattrs are read once per tick like files."""
    tree.cgroup("a")
    assert cg(ctx, "a").kill_preference() == KillPreference.NORMAL
    tree.set_xattr("a", "trusted.oomd_prefer")
    assert cg(ctx, "a").kill_preference() == KillPreference.NORMAL
    ctx.refresh()
    assert cg(ctx, "a").kill_preference() == KillPreference.PREFER
    assert cg(ctx, "a").has_xattr("trusted.oomd_prefer")
    assert not cg(ctx, "a").has_xattr("user.oomd_prefer")


# --- simple fields ---------------------------------------------------------------


def test_nr_dying_descendants(tree: FakeTree, ctx: OomdContext) -> None:
    """FsTest.GetNrDying / reference 4.4: the value; 0 if the key is missing; absent
    if the file is missing."""
    tree.cgroup("a", nr_dying=27)
    tree.cgroup("b")
    tree.write("b", "cgroup.stat", "nr_descendants 34\n")
    tree.cgroup("c")
    assert cg(ctx, "a").nr_dying_descendants() == 27
    assert cg(ctx, "b").nr_dying_descendants() == 0
    assert cg(ctx, "c").nr_dying_descendants() is None


def test_is_populated(tree: FakeTree, ctx: OomdContext) -> None:
    """FsTest.ReadIsPopulated / StandardKillRecursionTest.IgnoresDeadCgroup."""
    tree.cgroup("a", populated=True)
    tree.cgroup("b", populated=False)
    tree.cgroup("c")
    assert cg(ctx, "a").is_populated() is True
    assert cg(ctx, "b").is_populated() is False
    assert cg(ctx, "c").is_populated() is None


def test_oom_group(tree: FakeTree, ctx: OomdContext) -> None:
    """FsTest.ReadMemoryOomGroup / reference 4.4: "1" -> true, else false, missing
    -> absent."""
    tree.cgroup("slice1.slice", oom_group=True)
    tree.cgroup("slice1.slice/service1.service", oom_group=False)
    tree.cgroup("other")
    assert cg(ctx, "slice1.slice").oom_group() is True
    assert cg(ctx, "slice1.slice/service1.service").oom_group() is False
    assert cg(ctx, "other").oom_group() is None


def test_pids(tree: FakeTree, ctx: OomdContext) -> None:
    """FsTest.GetPids: cgroup.procs, one pid per line."""
    tree.cgroup("a", procs=[456, 789])
    tree.cgroup("b")
    assert cg(ctx, "a").pids() == [456, 789]
    assert cg(ctx, "b").pids() is None


def test_children_skip_dot_dirs_and_files(tree: FakeTree, ctx: OomdContext) -> None:
    """FsTest.FindDirectories / reference 4.3: children are subdirectories, dot-names
    skipped, files ignored; sorted by name; with their inodes."""
    tree.cgroup("p/b")
    tree.cgroup("p/a")
    tree.cgroup("p/.hidden")
    tree.write("p", "notadir", "x\n")
    kids = cg(ctx, "p").children()
    assert [name for name, _ in kids] == ["a", "b"]
    assert [inode for _, inode in kids] == [
        os.stat(tree.path("p/a")).st_ino,
        os.stat(tree.path("p/b")).st_ino,
    ]
    assert cg(ctx, "p/a").children() == []


def test_controllers(tree: FakeTree, ctx: OomdContext) -> None:
    """FsTest.ReadControllers: cgroup.controllers tokens."""
    tree.cgroup("a")
    tree.write("a", "cgroup.controllers", "cpu io memory pids\n")
    assert cg(ctx, "a").controllers() == frozenset({"cpu", "io", "memory", "pids"})


def test_limits_and_high_tmp(tree: FakeTree, ctx: OomdContext) -> None:
    """FsTest.ReadMemoryHigh/Max/HighTmp/SwapMax via the context, ``max`` = INT64_MAX."""
    tree.cgroup("a", high=1000, max="max", swap_max=12345)
    tree.write("a", "memory.high.tmp", "2000 20000\n")
    c = cg(ctx, "a")
    assert c.memory_high() == 1000
    assert c.memory_max() == INT64_MAX
    assert c.swap_max() == 12345
    assert c.memory_high_tmp() == 2000
    assert c.memory_low() == 0
    assert c.memory_min() == 0


def test_pressure_by_resource(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.4: memory/io pressure, full and some lines, by resource name."""
    tree.cgroup("a", pressure=(4.0, 5.0, 6.0), io_pressure=(1.0, 2.0, 3.0))
    c = cg(ctx, "a")
    mem = c.pressure("memory")
    io_some = c.pressure("io", full=False)
    assert mem is not None and mem.avg10 == pytest.approx(4.0)
    assert io_some is not None and io_some.avg60 == pytest.approx(2.0)
    assert c.pressure("cpu") is None


def test_anon_usage_missing_key_is_none(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.4: anon_usage is absent when memory.stat lacks the key (HEAD)."""
    tree.cgroup("a", stat={"file": 5})
    tree.cgroup("b", stat={"anon": 7})
    assert cg(ctx, "a").anon_usage() is None
    assert cg(ctx, "b").anon_usage() == 7


def test_a_symlinked_cgroup_is_found_by_no_pattern(tree: FakeTree, ctx: OomdContext) -> None:
    """Reference 4.2 (glob follows symlinks) deliberately not followed: patterns are
    confined to the cgroup filesystem (issue 12, docs/compatibility.md)."""
    target = tree.cgroup("real", current=400)
    os.symlink(target, tree.path("link"))
    assert [c.path.relative for c in ctx.resolve(patterns(ctx, "l*", "link", "*"))] == ["real"]
