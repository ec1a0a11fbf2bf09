"""The kill machinery (src/oomd/kill.py): pidfd passes, cgroup.kill, reaping, xattrs.

Fake-tree tests list processes the test spawned in a fake cgroup.procs; real-cgroup
tests create their own cgroups under the host's cgroup2 mount and remove them after.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from oomd import kill
from oomd.cgroup import fs
from oomd.kill import Killer, record_kill_done, record_kill_start
from tests.support.procs import Spawner
from tests.support.real_cgroups import move
from tests.support.real_cgroups import real_cgroup as make_real_cgroup
from tests.support.tree import FakeTree


def test_pidfd_kill_signals_every_listed_process_in_the_subtree(
    tree: FakeTree, spawner: Spawner
) -> None:
    """BaseKillPluginTest.TryToKillCgroupKillsRecursive: the cgroup and descendants."""
    procs = [spawner.sleeper() for _ in range(4)]
    tree.cgroup("victim", procs=[procs[0].pid])
    tree.cgroup("victim/child", procs=[procs[1].pid, procs[2].pid])
    tree.cgroup("victim/child/grandchild", procs=[procs[3].pid])
    bystander = spawner.sleeper()
    tree.cgroup("other", procs=[bystander.pid])
    report = Killer(use_cgroup_kill=False).kill(str(tree.path("victim")), reap=False)
    assert report.killed == 4
    assert sorted(report.pids) == sorted(p.pid for p in procs)
    assert all(spawner.is_dead(p) for p in procs)
    assert not spawner.is_dead(bystander, timeout=0.2)


def test_a_process_is_counted_once_even_if_still_listed_after_death(
    tree: FakeTree, spawner: Spawner
) -> None:
    """A dead (zombie or reaped) pid still listed in a later pass is not killed again
    (upstream HEAD skips zombies; v0.5.0 counted them twice)."""
    victim = spawner.sleeper()
    tree.cgroup("victim", procs=[victim.pid])
    report = Killer(use_cgroup_kill=False).kill(str(tree.path("victim")), reap=False)
    assert report.killed == 1


def test_pid_not_listed_after_pidfd_open_is_never_signalled(
    tree: FakeTree, spawner: Spawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recycled-pid guard: a pid must still be listed in cgroup.procs after its pidfd
    was opened, otherwise it may belong to another process now."""
    victim, recycled = spawner.sleeper(), spawner.sleeper()
    tree.cgroup("victim")
    reads = iter([[victim.pid, recycled.pid], [victim.pid]])
    real_read = kill.read_pids
    monkeypatch.setattr(
        kill, "read_pids", lambda d: next(reads, None) if d.endswith("victim") else real_read(d)
    )
    report = Killer(use_cgroup_kill=False).kill(str(tree.path("victim")), reap=False)
    assert report.pids == [victim.pid]
    assert spawner.is_dead(victim)
    assert not spawner.is_dead(recycled, timeout=0.2)


def test_own_pid_is_never_signalled(tree: FakeTree, spawner: Spawner) -> None:
    victim = spawner.sleeper()
    tree.cgroup("victim", procs=[os.getpid(), victim.pid])
    report = Killer(use_cgroup_kill=False).kill(str(tree.path("victim")), reap=False)
    assert report.pids == [victim.pid]


def test_vanished_pids_and_garbage_lines_are_skipped(
    tree: FakeTree, spawner: Spawner, oolog: Path
) -> None:
    gone = spawner.sleeper()
    gone.kill()
    gone.wait()
    victim = spawner.sleeper()
    tree.cgroup("victim")
    tree.write("victim", "cgroup.procs", f"{gone.pid}\nnot-a-pid\n{victim.pid}\n")
    report = Killer(use_cgroup_kill=False).kill(str(tree.path("victim")), reap=False)
    assert report.pids == [victim.pid]
    assert f"{gone.pid}[E3]" in oolog.read_text()


def test_empty_or_missing_cgroup_kills_nothing(tree: FakeTree) -> None:
    tree.cgroup("empty", procs=[])
    assert Killer(use_cgroup_kill=False).kill(str(tree.path("empty"))).killed == 0
    assert Killer(use_cgroup_kill=False).kill(str(tree.path("missing"))).killed == 0


def test_killed_log_line_has_pid_and_comm(tree: FakeTree, spawner: Spawner, oolog: Path) -> None:
    victim = spawner.sleeper()
    tree.cgroup("victim", procs=[victim.pid])
    Killer(use_cgroup_kill=False).kill(str(tree.path("victim")), reap=False)
    comm = (
        Path(f"/proc/{victim.pid}/comm").read_text().strip()
        if Path(f"/proc/{victim.pid}").exists()
        else None
    )
    text = oolog.read_text()
    assert f"Killed 1: {victim.pid}(" in text
    if comm:
        assert f"{victim.pid}({comm})" in text


def test_reaping_reports_released_processes(tree: FakeTree, spawner: Spawner, oolog: Path) -> None:
    victim = spawner.sleeper()
    tree.cgroup("victim", procs=[victim.pid])
    report = Killer(use_cgroup_kill=False).kill(str(tree.path("victim")), reap=True)
    assert report.reaped is not None
    text = oolog.read_text()
    assert "Reaping processes in " in text and "Reaped " in text


def test_proc_stat_parses_comm_with_parentheses(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text("42 (a (weird) name) S 1 42 42 0 -1\n")
    assert kill.proc_stat(42, str(tmp_path)) == ("a (weird) name", "S")
    assert kill.proc_stat(43, str(tmp_path)) is None


def test_kill_xattrs_accumulate_like_upstream(tree: FakeTree) -> None:
    """BaseKillPluginXattrTest.XattrSetts: ooms +1 per attempt, kill += processes
    killed, uuid overwritten; trusted and user variants."""
    path = str(tree.cgroup("victim"))
    record_kill_start(path, "aaaa")
    record_kill_done(path, 3)
    record_kill_start(path, "bbbb")
    record_kill_done(path, 2)
    for prefix in ("trusted", "user"):
        assert os.getxattr(path, f"{prefix}.oomd_ooms") == b"2"
        assert os.getxattr(path, f"{prefix}.oomd_kill") == b"5"
        assert os.getxattr(path, f"{prefix}.oomd_kill_uuid") == b"bbbb"


def test_garbage_counter_xattr_restarts_from_zero(tree: FakeTree) -> None:
    path = str(tree.cgroup("victim"))
    os.setxattr(path, "trusted.oomd_ooms", b"garbage")
    record_kill_start(path, "u")
    assert os.getxattr(path, "trusted.oomd_ooms") == b"1"


# --- real cgroups on the host's cgroup2 mount ------------------------------------------


@pytest.fixture
def real_cgroup() -> Iterator[Path]:
    with make_real_cgroup() as base:
        yield base


@pytest.mark.parametrize("use_cgroup_kill", [True, False], ids=["cgroup.kill", "pidfd"])
def test_real_cgroup_kill_kills_exactly_its_processes(
    real_cgroup: Path, spawner: Spawner, use_cgroup_kill: bool
) -> None:
    if use_cgroup_kill and not (real_cgroup / "cgroup.kill").exists():
        pytest.skip("kernel without cgroup.kill")
    victim_dir = real_cgroup / "victim"
    child_dir = victim_dir / "child"
    other_dir = real_cgroup / "other"
    child_dir.mkdir(parents=True)
    other_dir.mkdir()
    victims = [spawner.sleeper() for _ in range(3)]
    bystander = spawner.sleeper()
    move(victims[0].pid, victim_dir)
    move(victims[1].pid, child_dir)
    move(victims[2].pid, child_dir)
    move(bystander.pid, other_dir)
    report = Killer(use_cgroup_kill=use_cgroup_kill).kill(str(victim_dir))
    assert report.error is None
    assert report.killed == 3
    assert all(spawner.is_dead(p) for p in victims)
    assert not spawner.is_dead(bystander, timeout=0.2)
    bystander.kill()
    bystander.wait()


@pytest.mark.parametrize("use_cgroup_kill", [False, True], ids=["pidfd", "cgroup.kill"])
def test_memory_is_reaped_right_after_the_signal_not_after_the_exit_wait(
    tree: FakeTree, spawner: Spawner, monkeypatch: pytest.MonkeyPatch, use_cgroup_kill: bool
) -> None:
    """process_mrelease helps only while the victim is still exiting, so it must run
    before the daemon waits for the exit (found by the real-kernel e2e suite: after the
    wait every reap was a no-op)."""
    victim = spawner.sleeper()
    tree.cgroup("victim", procs=[victim.pid], populated=True)
    if use_cgroup_kill:
        tree.write("victim", "cgroup.kill", "")
    calls: list[str] = []
    monkeypatch.setattr(kill, "process_mrelease", lambda fd: calls.append("reap"))
    real_wait = Killer._wait_for_exit

    def wait(self: Killer, fds: list[int]) -> None:
        calls.append("wait")
        real_wait(self, fds)

    monkeypatch.setattr(Killer, "_wait_for_exit", wait)
    if use_cgroup_kill:
        # A fake cgroup.kill kills nothing: do what the kernel would.
        real_write = fs.write_control

        def write(path: str, text: str) -> None:
            if path.endswith("cgroup.kill"):
                victim.kill()
            else:
                real_write(path, text)

        monkeypatch.setattr(fs, "write_control", write)
    report = Killer(use_cgroup_kill=use_cgroup_kill).kill(str(tree.path("victim")), reap=True)
    assert report.killed == 1 and report.reaped == 1
    assert calls[:2] == ["reap", "wait"]


def test_a_failed_kernelkill_thaws_the_cgroup_it_froze(tree: FakeTree) -> None:
    """Deliberate difference: upstream leaves the cgroup frozen when cgroup.kill
    fails, so processes in it (or moved in later) would never run again."""
    tree.cgroup("victim")
    tree.write("victim", "cgroup.kill", "")
    tree.write("victim", "cgroup.freeze", "0")
    report = Killer().kill(str(tree.path("victim")), freeze=True)
    assert report.error == "Failed to read cgroup.events"
    assert (tree.path("victim") / "cgroup.freeze").read_text() == "0"
