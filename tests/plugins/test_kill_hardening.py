"""Kills that kill nothing are failures, not kills (issue 12 items 1, 4, 5): the kill
core moves on to the next candidate, writes no kill line and no ``oomd_kill``; a pid no
process can have never aborts a kill; counter xattrs a delegated user wrote never stop
a kill.

Fake trees list processes the test spawned; where ``cgroup.kill`` is a plain file in the
fake tree, writing it signals nothing, so a listed process stays alive exactly like a
real victim that is still exiting."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from oomd.kill import Killer, read_counter
from tests.support.harness import Harness, always_acting, plugin, ruleset
from tests.support.procs import Spawner
from tests.support.tree import FakeProc, FakeTree

MB = 1 << 20


def leaf(h: Harness, rel: str, mb: int, procs: list[int], **kw: object) -> None:
    h.tree.cgroup(rel, current=mb * MB, stat={"anon": mb * MB}, procs=procs, populated=True)
    for name, value in kw.items():
        h.tree.write(rel, name, str(value))


def kill_ruleset(name: str, **args: object) -> dict[str, object]:
    return ruleset(
        name,
        [("g", [plugin("continue")])],
        [plugin("kill_by_memory_size_or_growth", cgroup="workload.slice/*", **args)],
    )


def victims(h: Harness) -> list[str]:
    return [line.split()[5] for line in h.kills]


def test_cgroup_kill_of_a_populated_cgroup_without_processes_kills_nothing(
    tree: FakeTree,
) -> None:
    """cgroup.procs empty while cgroup.events says populated: the write would kill
    nothing we can see, so it is not made and nothing is counted (it counted 1)."""
    tree.cgroup("victim", procs=[], populated=True)
    tree.write("victim", "cgroup.kill", "")
    report = Killer().kill(str(tree.path("victim")), reap=False)
    assert (report.killed, report.error) == (0, None)
    assert (tree.path("victim") / "cgroup.kill").read_text() == ""


@pytest.mark.parametrize("mode", ["cgroup.kill", "pidfd"])
def test_a_phantom_victim_is_a_failed_kill_and_the_next_candidate_dies(
    harness: Harness, spawner: Spawner, mode: str
) -> None:
    h = harness
    real = spawner.sleeper()
    leaf(h, "workload.slice/big", 300, [])  # populated, but no process listed
    leaf(h, "workload.slice/small", 100, [real.pid])
    if mode == "cgroup.kill":
        h.tree.write("workload.slice/big", "cgroup.kill", "")
        h.tree.write("workload.slice/small", "cgroup.kill", "")
    h.load({"rulesets": [kill_ruleset("r", post_action_delay=30)]})
    h.tick()
    assert victims(h) == ["workload.slice/small"]
    assert h.tree.get_xattr("workload.slice/big", "trusted.oomd_kill") is None
    assert h.tree.get_xattr("workload.slice/small", "trusted.oomd_kill") == b"1"
    if mode == "pidfd":
        assert spawner.is_dead(real)


def test_two_rulesets_do_not_both_kill_a_victim_that_is_still_exiting(
    harness: Harness, spawner: Spawner
) -> None:
    """The first ruleset's cgroup.kill "hits" the listed process, which (a plain file
    here) keeps running, as a real victim stuck exiting: the second ruleset in the same
    tick, and the first one in the next tick, must not count it again."""
    h = harness
    victim = spawner.sleeper()
    leaf(h, "workload.slice/a", 300, [victim.pid])
    h.tree.write("workload.slice/a", "cgroup.kill", "")
    h.load({"rulesets": [kill_ruleset("one"), kill_ruleset("two")]})
    h.tick()
    assert victims(h) == ["workload.slice/a"]
    h.tick()
    assert victims(h) == ["workload.slice/a"]
    assert h.tree.get_xattr("workload.slice/a", "trusted.oomd_kill") == b"1"


@pytest.mark.parametrize("use_cgroup_kill", [True, False], ids=["cgroup.kill", "pidfd"])
def test_a_pid_over_pid_max_is_skipped_and_the_rest_killed(
    tree: FakeTree, spawner: Spawner, oolog: Path, use_cgroup_kill: bool
) -> None:
    """A cgroup.procs line >= 2^31 raised OverflowError in pidfd_open and aborted the
    whole kill, so the real process listed after it survived."""
    victim = spawner.sleeper()
    tree.cgroup("victim")
    if use_cgroup_kill:
        tree.write("victim", "cgroup.kill", "")
        tree.write("victim", "cgroup.events", "populated 1\n")
    tree.write("victim", "cgroup.procs", f"{2**31}\n{2**64}\n{victim.pid}\n")
    report = Killer(use_cgroup_kill=use_cgroup_kill).kill(str(tree.path("victim")), reap=False)
    assert report.pids == [victim.pid]
    assert report.killed == 1
    if not use_cgroup_kill:
        assert spawner.is_dead(victim)
    assert f"Skipping pid {2**31}" in oolog.read_text()


@pytest.fixture
def big_xattr_harness() -> Iterator[Harness]:
    """A harness whose fake tree lives on tmpfs: ext4 (the usual /tmp) refuses xattr
    values over one block, cgroupfs and tmpfs take the 5,000-digit values of the audit."""
    scratch = Path(tempfile.mkdtemp(prefix="oomd-xattr-", dir="/dev/shm"))
    try:
        os.setxattr(scratch, "trusted.oomd_probe", b"9" * 5000)
    except OSError:
        shutil.rmtree(scratch)
        pytest.skip("no tmpfs with large trusted.* xattrs")
    try:
        yield Harness(FakeTree(scratch / "cgroup"), FakeProc(scratch / "proc"))
    finally:
        shutil.rmtree(scratch)


@pytest.mark.parametrize(
    "value",
    [b"9" * 4300, b"9" * 5000, b"-1", b"18446744073709551615", b"\xff\x00garbage", b" 7 "],
)
@pytest.mark.parametrize("name", ["user.oomd_ooms", "trusted.oomd_ooms", "user.oomd_kill"])
def test_counter_xattrs_never_stop_a_kill(
    big_xattr_harness: Harness, spawner: Spawner, name: str, value: bytes
) -> None:
    """A delegated user writes any user.* value on the cgroups it owns: '9' * 4300 made
    str() of the incremented count raise, so every kill of that cgroup failed."""
    h = big_xattr_harness
    victim = spawner.sleeper()
    leaf(h, "workload.slice/a", 300, [victim.pid])
    h.tree.set_xattr("workload.slice/a", name, value)
    h.load({"rulesets": [kill_ruleset("r")]})
    h.tick()
    assert victims(h) == ["workload.slice/a"]
    assert spawner.is_dead(victim)
    stored = h.tree.get_xattr("workload.slice/a", name)
    assert stored is not None and stored.isdigit() and len(stored) <= 20


def test_read_counter_is_total() -> None:
    assert read_counter(b"41") == 41
    assert read_counter(b"") == 0
    assert read_counter(b"-3") == 0
    assert read_counter(b"9" * 4300) == 0
    assert read_counter(str(2**64).encode()) == 0
    assert read_counter(os.urandom(64)) >= 0


@pytest.mark.parametrize("plugin_name", ["kill_by_memory_size_or_growth", "kill_by_pressure"])
def test_a_memory_current_beyond_int64_is_unavailable_not_an_error(
    harness: Harness, spawner: Spawner, plugin_name: str
) -> None:
    """Found by the tree fuzzer: a 4,000-digit memory.current (under int()'s limit) made
    the growth average's float arithmetic raise OverflowError in every kill plugin, every
    tick. Out of int64 is stoll's out_of_range: unavailable."""
    h = harness
    victim = spawner.sleeper()
    leaf(h, "workload.slice/a", 100, [victim.pid])
    leaf(h, "workload.slice/huge", 100, [])
    h.tree.write("workload.slice/huge", "memory.current", "9" * 4000 + "\n")
    extra = {"resource": "memory"} if plugin_name == "kill_by_pressure" else {}
    h.load(always_acting(plugin(plugin_name, cgroup="workload.slice/*", **extra)))
    h.tick(2)
    assert not h.stats.get("oomd.plugin_errors")
    assert victims(h) == ["workload.slice/a"]
