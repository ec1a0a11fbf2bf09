"""The kill core's choices with a fake killer on the plugin's host (no process is
spawned or signalled): backtracking after a failed kill, ``memory.oom.group`` descent
under ``recursive``, and a kill resumed after its prekill hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomd import events
from oomd.cgroup.context import ActionContext, CgroupContext
from oomd.engine.kill_base import KillPlugin
from oomd.engine.plugin import PluginRet
from oomd.kill import KillReport
from tests.support.harness import Harness, always_acting, plugin
from tests.support.tree import FakeProc, FakeTree

MB = 1 << 20


class FakeKiller:
    """Records every kill; ``outcomes`` says what a cgroup's kill reports (default:
    one process killed)."""

    def __init__(self, tree: FakeTree) -> None:
        self.tree = tree
        self.calls: list[tuple[str, bool, bool]] = []
        self.outcomes: dict[str, KillReport] = {}

    def kill(self, cgroup_dir: str, *, freeze: bool = False, reap: bool = True) -> KillReport:
        rel = str(Path(cgroup_dir).relative_to(self.tree.root))
        self.calls.append((rel, freeze, reap))
        return self.outcomes.get(rel, KillReport(killed=1, pids=[4242]))

    @property
    def killed(self) -> list[str]:
        return [rel for rel, _, _ in self.calls]


@pytest.fixture
def killer(tree: FakeTree) -> FakeKiller:
    return FakeKiller(tree)


@pytest.fixture
def h(tree: FakeTree, proc: FakeProc, killer: FakeKiller) -> Harness:
    return Harness(tree, proc, killer)


def load(h: Harness, **args: Any) -> KillPlugin:
    h.load(
        always_acting(plugin("kill_by_memory_size_or_growth", cgroup="workload.slice/*", **args))
    )
    assert h.engine is not None
    action = h.engine.rulesets[0].actions[0]
    assert isinstance(action, KillPlugin)
    return action


def leaf(h: Harness, rel: str, mb: int, **kw: Any) -> None:
    h.tree.cgroup(rel, current=mb * MB, stat={"anon": mb * MB}, procs=[4242], **kw)


def victims(h: Harness) -> list[str]:
    return [line.split()[5] for line in h.kills]


def run(h: Harness, action: KillPlugin) -> PluginRet:
    h.ctx.refresh()
    return action.run(h.ctx)


def test_the_host_killer_gets_the_victim_and_the_kill_args(h: Harness, killer: FakeKiller) -> None:
    leaf(h, "workload.slice/A", 100)
    leaf(h, "workload.slice/B", 60)
    action = load(h, kernelkill="true", reap_memory="false")
    assert run(h, action) is PluginRet.STOP
    assert killer.calls == [("workload.slice/A", True, False)]
    assert victims(h) == ["workload.slice/A"]
    assert h.tree.get_xattr("workload.slice/A", "trusted.oomd_kill") == b"1"


def test_the_kill_event_carries_the_uuid_recorded_on_the_victim(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logs, status, post-kill hooks and the flight recorder's incident file name the
    kill by the uuid an operator finds on the victim (trusted.oomd_kill_uuid), not the
    action's, and nothing is read back from the victim to learn it."""
    seen: list[events.KillEvent] = []
    monkeypatch.setattr(events, "subscribers", [seen.append])
    leaf(h, "workload.slice/A", 100)
    action = load(h)
    assert run(h, action) is PluginRet.STOP
    [event] = seen
    on_victim = h.tree.get_xattr("workload.slice/A", "trusted.oomd_kill_uuid")
    assert on_victim and event.kill_uuid == on_victim.decode()
    assert event.kill_uuid != h.ctx.action_context.kill_uuid
    assert "oomd kill: " + event.line == h.kills[0]


def test_failed_kill_backtracks_to_the_sibling_then_up_the_tree(
    h: Harness, killer: FakeKiller, oolog: Path
) -> None:
    """StandardKillRecursionTest.BacktracksUpTreeOnFail, without a process: A2 fails
    with an error, A1 kills nothing, so A's next-best sibling B dies."""
    leaf(h, "workload.slice/A", 100)
    leaf(h, "workload.slice/A/A1", 30)
    leaf(h, "workload.slice/A/A2", 70)
    leaf(h, "workload.slice/B", 60)
    leaf(h, "workload.slice/C", 10)
    killer.outcomes["workload.slice/A/A2"] = KillReport(error="Failed to kill cgroup: EPERM")
    killer.outcomes["workload.slice/A/A1"] = KillReport(killed=0)
    action = load(h, recursive="true")
    assert run(h, action) is PluginRet.STOP
    assert killer.killed == ["workload.slice/A/A2", "workload.slice/A/A1", "workload.slice/B"]
    assert victims(h) == ["workload.slice/B"]
    log = oolog.read_text()
    assert "Failed to kill cgroup workload.slice/A/A2: Failed to kill cgroup: EPERM" in log
    assert "No processed killed from workload.slice/A/A1" in log
    # upstream records nothing on a failed kill; one that killed 0 is a failed kill too
    # (upstream wrote oomd_kill=0 there, which reads as "oomd killed this": issue 12)
    assert h.tree.get_xattr("workload.slice/A/A2", "trusted.oomd_kill") is None
    assert h.tree.get_xattr("workload.slice/A/A1", "trusted.oomd_kill") is None
    assert h.stats.get("oomd.kills") == 1


def test_every_kill_failing_continues_to_the_next_action(h: Harness, killer: FakeKiller) -> None:
    leaf(h, "workload.slice/A", 100)
    leaf(h, "workload.slice/B", 60)
    killer.outcomes = {
        "workload.slice/A": KillReport(killed=0),
        "workload.slice/B": KillReport(error="gone"),
    }
    action = load(h)
    assert run(h, action) is PluginRet.CONTINUE
    assert killer.killed == ["workload.slice/A", "workload.slice/B"]
    assert h.kills == [] and h.stats.get("oomd.kills") == 0


def test_recursive_stops_at_memory_oom_group(h: Harness, killer: FakeKiller) -> None:
    """StandardKillRecursionTest.RespectsMemoryOomGroup: the descent stops at a group
    (killed whole, through its own directory), and goes on below a non-group."""
    leaf(h, "workload.slice/A", 100)
    leaf(h, "workload.slice/A/G", 80, oom_group=True)
    leaf(h, "workload.slice/A/G/g1", 10)
    leaf(h, "workload.slice/A/G/g2", 70)
    leaf(h, "workload.slice/A/other", 20)
    action = load(h, recursive="true")
    assert run(h, action) is PluginRet.STOP
    assert killer.killed == ["workload.slice/A/G"]
    # Without recursive, the top-level candidate dies whole.
    killer.calls.clear()
    action = load(h)
    assert run(h, action) is PluginRet.STOP
    assert killer.killed == ["workload.slice/A"]


def test_an_oom_group_that_fails_backtracks_to_its_sibling(h: Harness, killer: FakeKiller) -> None:
    leaf(h, "workload.slice/A", 100)
    leaf(h, "workload.slice/A/G", 80, oom_group=True)
    leaf(h, "workload.slice/A/G/g1", 70)
    leaf(h, "workload.slice/A/other", 20)
    killer.outcomes["workload.slice/A/G"] = KillReport(error="EBUSY")
    action = load(h, recursive="true")
    assert run(h, action) is PluginRet.STOP
    assert killer.killed == ["workload.slice/A/G", "workload.slice/A/other"]


class Invocation:
    def __init__(self) -> None:
        self.done = False
        self.abandoned = False

    def finished(self) -> bool:
        return self.done

    def abandon(self) -> None:
        self.abandoned = True


class Hooks:
    """A prekill hook handler that starts one pending invocation per victim."""

    def __init__(self) -> None:
        self.started: list[tuple[str, Invocation]] = []

    def __call__(self, cg: CgroupContext, action: ActionContext) -> Invocation:
        invocation = Invocation()
        self.started.append((cg.path.relative, invocation))
        return invocation


def hooked(h: Harness, deadline: float | None = None) -> Hooks:
    hooks = Hooks()
    h.ctx.prekill_hook_handler = hooks
    h.ctx.action_context = ActionContext(ruleset_name="r", prekill_hook_deadline=deadline)
    return hooks


def test_kill_waits_for_its_prekill_hook_then_resumes(
    h: Harness, killer: FakeKiller, oolog: Path
) -> None:
    leaf(h, "workload.slice/A", 100)
    leaf(h, "workload.slice/B", 60)
    action = load(h)
    hooks = hooked(h)
    assert run(h, action) is PluginRet.ASYNC_PAUSED
    assert run(h, action) is PluginRet.ASYNC_PAUSED
    assert [rel for rel, _ in hooks.started] == ["workload.slice/A"]
    assert killer.calls == []
    hooks.started[0][1].done = True
    assert run(h, action) is PluginRet.STOP
    assert killer.killed == ["workload.slice/A"]
    log = oolog.read_text()
    assert "Still running pre-kill hook for Ruleset=r" in log
    assert "pre-kill hook finished for Ruleset=r" in log


def test_resumed_kill_that_fails_backtracks_without_hooking_again_past_the_deadline(
    h: Harness, killer: FakeKiller, oolog: Path
) -> None:
    """The hook times out (abandoned); the victim's kill fails, and the saved stack
    gives the next candidate, whose kill needs no hook any more (past the deadline)."""
    leaf(h, "workload.slice/A", 100)
    leaf(h, "workload.slice/B", 60)
    killer.outcomes["workload.slice/A"] = KillReport(error="EPERM")
    action = load(h)
    hooks = hooked(h, deadline=h.clock.now + 5)
    assert run(h, action) is PluginRet.ASYNC_PAUSED
    h.clock.advance(6)
    assert run(h, action) is PluginRet.STOP
    assert hooks.started[0][1].abandoned
    assert [rel for rel, _ in hooks.started] == ["workload.slice/A"]
    assert killer.killed == ["workload.slice/A", "workload.slice/B"]
    assert victims(h) == ["workload.slice/B"]
    assert "pre-kill hook timed out for Ruleset=r" in oolog.read_text()


def test_resumed_kill_of_a_removed_victim_gives_up(h: Harness, killer: FakeKiller) -> None:
    leaf(h, "workload.slice/A", 100)
    leaf(h, "workload.slice/B", 60)
    action = load(h)
    hooks = hooked(h)
    assert run(h, action) is PluginRet.ASYNC_PAUSED
    h.tree.remove("workload.slice/A")
    hooks.started[0][1].done = True
    assert run(h, action) is PluginRet.CONTINUE
    assert killer.calls == []
