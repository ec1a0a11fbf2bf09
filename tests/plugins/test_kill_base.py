"""The kill core shared by every kill plugin (upstream plugins/BaseKillPlugin.cpp;
CorePluginsTest StandardKillRecursionTest.*, BaseKillPluginTest.*), exercised through
kill_by_memory_size_or_growth on fake trees."""

from __future__ import annotations

import errno
import signal
from pathlib import Path
from typing import Any

import pytest

from oomd.engine.kill_base import KillPlugin
from oomd.engine.plugin import PluginRet
from tests.support.harness import Harness, plugin, ruleset
from tests.support.procs import Spawner

MB = 1 << 20


def load(h: Harness, cgroup: str = "workload.slice/*", **args: Any) -> KillPlugin:
    h.load(
        {
            "rulesets": [
                ruleset(
                    "r",
                    [("g", [plugin("continue")])],
                    [plugin("kill_by_memory_size_or_growth", cgroup=cgroup, **args)],
                )
            ]
        }
    )
    assert h.engine is not None
    action = h.engine.rulesets[0].actions[0]
    assert isinstance(action, KillPlugin)
    return action


def victims(h: Harness) -> list[str]:
    return [line.split()[5] for line in h.kills]


def leaf(h: Harness, rel: str, mb: int, pids: list[int] | None = None, **kw: Any) -> None:
    h.tree.cgroup(
        rel, current=mb * MB, stat={"anon": mb * MB}, procs=pids if pids is not None else [], **kw
    )


def test_recursive_descends_to_the_best_leaf(harness: Harness) -> None:
    """StandardKillRecursionTest.Recurses."""
    leaf(harness, "workload.slice/A", 100)
    leaf(harness, "workload.slice/A/A1", 30)
    leaf(harness, "workload.slice/A/A2", 70)
    leaf(harness, "workload.slice/B", 60)
    load(harness, recursive=True, dry=True)
    harness.tick()
    assert victims(harness) == ["workload.slice/A/A2"]


def test_without_recursive_the_top_level_candidate_dies(harness: Harness) -> None:
    """StandardKillRecursionTest.ConfigurableToNotRecurse."""
    leaf(harness, "workload.slice/A", 100)
    leaf(harness, "workload.slice/A/A1", 30)
    leaf(harness, "workload.slice/B", 60)
    load(harness, dry=True)
    harness.tick()
    assert victims(harness) == ["workload.slice/A"]


def test_failed_kill_backtracks_to_sibling_then_up_the_tree(
    harness: Harness, spawner: Spawner
) -> None:
    """StandardKillRecursionTest.BacktracksUpTreeOnFail: a victim whose kill kills no
    process is skipped for its next-best sibling, then the parent's next sibling."""
    dead = spawner.sleeper()
    dead.kill()
    dead.wait()
    survivor = spawner.sleeper()
    leaf(harness, "workload.slice/A", 100)
    leaf(harness, "workload.slice/A/A1", 70, [dead.pid])
    leaf(harness, "workload.slice/A/A2", 30, [dead.pid])
    leaf(harness, "workload.slice/B", 60, [survivor.pid])
    action = load(harness, recursive=True)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.STOP
    assert victims(harness) == ["workload.slice/B"]
    assert spawner.is_dead(survivor)


def test_nothing_killed_returns_continue_and_logs(
    harness: Harness, spawner: Spawner, oolog: Path
) -> None:
    dead = spawner.sleeper()
    dead.kill()
    dead.wait()
    leaf(harness, "workload.slice/A", 100, [dead.pid])
    action = load(harness)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.CONTINUE
    assert harness.kills == []
    assert "No processed killed from workload.slice/A" in oolog.read_text()


def test_memory_oom_group_stops_descent_and_kills_the_whole_group(
    harness: Harness, spawner: Spawner
) -> None:
    """StandardKillRecursionTest.RespectsMemoryOomGroup: the group dies as a unit, its
    descendants' processes included."""
    p1, p2, other = spawner.sleeper(), spawner.sleeper(), spawner.sleeper()
    leaf(harness, "workload.slice/A", 100, oom_group=True)
    leaf(harness, "workload.slice/A/A1", 30, [p1.pid])
    leaf(harness, "workload.slice/A/A2", 70, [p2.pid])
    leaf(harness, "workload.slice/B", 60, [other.pid])
    load(harness, recursive=True)
    harness.tick()
    assert victims(harness) == ["workload.slice/A"]
    assert spawner.is_dead(p1) and spawner.is_dead(p2)
    assert not spawner.is_dead(other, timeout=0.2)


def test_preferences_apply_per_level_among_siblings(harness: Harness) -> None:
    """StandardKillRecursionTest.RespectsPreferAvoid: an xattr on a parent does not
    affect the ranking of its children, and vice versa."""
    leaf(harness, "workload.slice/A", 100)
    leaf(harness, "workload.slice/A/A1", 30)
    leaf(harness, "workload.slice/A/A2", 70)
    leaf(harness, "workload.slice/B", 60)
    harness.tree.set_xattr("workload.slice/A", "trusted.oomd_avoid")
    harness.tree.set_xattr("workload.slice/B/", "user.oomd_avoid")
    harness.tree.set_xattr("workload.slice/A/A1", "trusted.oomd_prefer")
    load(harness, recursive=True, dry=True)
    harness.tick()
    # A and B are both AVOID: size decides (A); inside A, A1 is PREFER.
    assert victims(harness) == ["workload.slice/A/A1"]


def test_unpopulated_and_anon_free_cgroups_are_skipped(harness: Harness) -> None:
    """StandardKillRecursionTest.IgnoresDeadCgroup (populated 0) and upstream HEAD's
    anon == 0 skip; a cgroup without memory.stat is not skipped."""
    harness.tree.cgroup("workload.slice/empty", current=500 * MB, stat={"anon": 1}, populated=False)
    harness.tree.cgroup("workload.slice/noanon", current=400 * MB, stat={"anon": 0, "file": 1})
    harness.tree.cgroup("workload.slice/nostat", current=300 * MB)
    leaf(harness, "workload.slice/small", 10)
    load(harness, dry=True)
    harness.tick()
    assert victims(harness) == ["workload.slice/nostat"]


def test_only_configured_cgroups_are_candidates(harness: Harness) -> None:
    """StandardKillRecursionTest.IgnoresOutsideConfiguredCgroup."""
    leaf(harness, "workload.slice/A", 10)
    leaf(harness, "other.slice/huge", 1000)
    load(harness, dry=True)
    harness.tick()
    assert victims(harness) == ["workload.slice/A"]


def test_prerun_keeps_history_for_descendants_only_when_recursive(harness: Harness) -> None:
    """StandardKillRecursionTest.PrerunsRecursively: prerun walks descendants when
    recursive, stopping at memory.oom.group=1 cgroups."""
    leaf(harness, "workload.slice/A", 100)
    leaf(harness, "workload.slice/A/A1", 30)
    leaf(harness, "workload.slice/G", 60, oom_group=True)
    leaf(harness, "workload.slice/G/G1", 60)
    action = load(harness, recursive=True)
    harness.ctx.refresh()
    action.prerun(harness.ctx)
    touched = {
        c.path.relative for c in harness.ctx.cgroups.values() if c.is_cached("average_usage")
    }
    assert touched == {"workload.slice/A", "workload.slice/A/A1", "workload.slice/G"}


def test_the_daemons_own_cgroup_and_its_ancestors_are_never_victims(
    harness: Harness, oolog: Path
) -> None:
    leaf(harness, "workload.slice/oomd", 100)
    leaf(harness, "workload.slice/oomd/sub", 100)
    leaf(harness, "workload.slice/other", 10)
    harness.env.own_cgroup = str(harness.tree.path("workload.slice/oomd/sub"))
    load(harness, dry=True)
    harness.tick()
    assert victims(harness) == ["workload.slice/other"]
    assert "it contains oomd itself" in oolog.read_text()


def test_kill_line_for_root_relative_path_and_missing_values(harness: Harness) -> None:
    """The kill line: memory full PSI of the victim (absent -> 0.00), the relative path,
    usage in bytes (absent -> 0), ruleset, detector group, killer and " v2"."""
    harness.tree.cgroup("workload.slice/A", stat={"anon": 1})
    load(harness, dry=True)
    harness.tick()
    assert harness.kills == [
        "oomd kill: 0.00 0.00 0.00 workload.slice/A 0 ruleset:[r] detectorgroup:[g] "
        "killer:(dry)kill_by_memory_size_or_growth v2"
    ]


def test_memory_stat_is_logged_before_a_real_kill(
    harness: Harness, spawner: Spawner, oolog: Path
) -> None:
    victim = spawner.sleeper()
    harness.tree.cgroup(
        "workload.slice/A", current=MB, stat={"anon": 4096, "file": 8192}, procs=[victim.pid]
    )
    load(harness)
    harness.tick()
    text = oolog.read_text()
    assert "memory.stat for workload.slice/A: " in text
    assert "anon 4096" in text and "file 8192" in text
    assert f"Trying to kill {harness.tree.path('workload.slice/A')}" in text


def test_context_dump_skips_negligible_cgroups_unless_debug(harness: Harness, oolog: Path) -> None:
    harness.proc.meminfo(total=10_000 * MB)  # negligible: <= 10 MB with no pressure
    leaf(harness, "workload.slice/big", 100)
    leaf(harness, "workload.slice/tiny", 1)
    leaf(harness, "workload.slice/pressured", 1, pressure=(5, 0, 0))
    load(harness, dry=True)
    harness.tick()
    text = oolog.read_text()
    assert "name=workload.slice/big" in text and "name=workload.slice/pressured" in text
    assert "name=workload.slice/tiny" not in text
    load(harness, dry=True, debug=True)
    harness.tick()
    assert "name=workload.slice/tiny" in oolog.read_text()


def test_context_dump_fields_match_upstream_format(harness: Harness, oolog: Path) -> None:
    harness.tree.cgroup("workload.slice", current=200 * MB, low=50 * MB)
    harness.tree.cgroup(
        "workload.slice/big",
        current=100 * MB,
        low=10 * MB,
        high=200 * MB,
        stat={"anon": 50 * MB, "pgscan": 7},
        swap=3 * MB,
        pressure=(90.5, 12.25, 3),
    )
    load(harness, dry=True, cgroup="workload.slice/big")
    harness.tick()
    text = oolog.read_text()
    assert "  pressure=90.5:12.25:3-0:0:0" in text
    assert (
        "  mem=100MB mem_avg=25MB mem_low=10MB mem_min=0MB mem_high=200MB "
        "mem_high_tmp=8796093022207MB mem_max=8796093022207MB mem_prot=10MB anon=50MB swap_usage=3MB"
    ) in text
    assert "  io_cost_cumulative=0 io_cost_rate=0" in text
    assert "  pg_scan_cumulative=7 pg_scan_rate=0" in text
    assert "  kill_preference=NORMAL" in text


def test_a_victim_that_cannot_be_signalled_is_logged_and_the_next_one_dies(
    harness: Harness, spawner: Spawner, oolog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EPERM on every process of the best victim: nothing is killed there, which is
    logged, and the next candidate is tried, as upstream."""
    protected, other = spawner.sleeper(), spawner.sleeper()
    leaf(harness, "workload.slice/A", 100, [protected.pid])
    leaf(harness, "workload.slice/B", 60, [other.pid])
    real_send = signal.pidfd_send_signal

    def send(fd: int, sig: int, *args: Any) -> None:
        if _pid_of(fd) == protected.pid:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        real_send(fd, sig, *args)

    monkeypatch.setattr(signal, "pidfd_send_signal", send)
    action = load(harness)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.STOP
    assert victims(harness) == ["workload.slice/B"]
    assert spawner.is_dead(other)
    assert not spawner.is_dead(protected, timeout=0.2)
    text = oolog.read_text()
    assert f"{protected.pid}(" in text and "[E1]" in text
    assert "No processed killed from workload.slice/A" in text


def _pid_of(pidfd: int) -> int:
    with open(f"/proc/self/fdinfo/{pidfd}") as f:
        for line in f:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    return -1


def test_a_victim_removed_after_ranking_is_skipped(
    harness: Harness, spawner: Spawner, oolog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cgroup that vanishes (or is re-created) between ranking and killing is never
    killed; the next candidate is."""
    gone, other = spawner.sleeper(), spawner.sleeper()
    leaf(harness, "workload.slice/A", 100, [gone.pid])
    leaf(harness, "workload.slice/B", 60, [other.pid])
    action = load(harness)
    real_rank = action.rank

    def rank_then_recreate(ctx: Any, cgroups: Any) -> Any:
        ranked = real_rank(ctx, cgroups)
        # A new cgroup under the same name (made first, so it cannot reuse the inode;
        # on cgroupfs inode numbers are never reused at all).
        leaf(harness, "workload.slice/A.new", 100, [gone.pid])
        harness.tree.remove("workload.slice/A")
        harness.tree.path("workload.slice/A.new").rename(harness.tree.path("workload.slice/A"))
        return ranked

    monkeypatch.setattr(action, "rank", rank_then_recreate)
    harness.ctx.refresh()
    assert action.run(harness.ctx) is PluginRet.STOP
    assert victims(harness) == ["workload.slice/B"]
    assert not spawner.is_dead(gone, timeout=0.2)
    assert "it was removed or re-created since it was ranked" in oolog.read_text()


def test_failed_kill_records_the_attempt_but_no_completion(harness: Harness, oolog: Path) -> None:
    """Upstream returns before trusted.oomd_kill when the kill itself fails (here:
    cgroup.kill present but cgroup.events unreadable); oomd_ooms still counts it."""
    leaf(harness, "workload.slice/A", 100)
    harness.tree.write("workload.slice/A", "cgroup.kill", "")
    load(harness)
    harness.tick()
    assert harness.kills == []
    assert (
        "Failed to kill cgroup workload.slice/A: Failed to read cgroup.events" in oolog.read_text()
    )
    assert harness.tree.get_xattr("workload.slice/A", "trusted.oomd_ooms") == b"1"
    assert harness.tree.get_xattr("workload.slice/A", "trusted.oomd_kill") is None


def test_building_a_kill_plugin_keeps_the_kill_count(harness: Harness) -> None:
    """Deliberate difference: upstream's kill plugin constructor sets oomd.kills to 0,
    so adding a drop-in (or a per-cgroup copy) with a kill action reset the count."""
    leaf(harness, "workload.slice/A", 100)
    harness.stats.set("oomd.kills", 7)
    load(harness)
    load(harness, dry=True)
    assert harness.stats.get("oomd.kills") == 7


def test_reap_memory_false_skips_process_mrelease(
    harness: Harness, spawner: Spawner, oolog: Path
) -> None:
    """HEAD's reap_memory (default true) is passed on to the kill."""
    victim = spawner.sleeper()
    leaf(harness, "workload.slice/A", 100, [victim.pid])
    load(harness, reap_memory=False)
    harness.tick()
    assert spawner.is_dead(victim)
    assert "Reaping processes in" not in oolog.read_text()
    other = spawner.sleeper()
    leaf(harness, "workload.slice/B", 200, [other.pid])
    load(harness)
    harness.tick()
    assert spawner.is_dead(other)
    assert "Reaping processes in" in oolog.read_text()
