"""The kill ladder (issue 17): its state machine on a clock the test moves, then the
kill core driving it on a fake tree with a fake killer (nothing is signalled): the
first signal and the kill line, the wait while ticks go on, escalation at the end of
the grace period or on rising pressure, an early exit, a daemon restart in the middle
(the xattr), a re-created cgroup, and dry runs."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from oomd.config.errors import ConfigError
from oomd.engine.kill_base import KillPlugin
from oomd.engine.ladder import (
    LADDER_XATTR,
    PRESSURE_RISE,
    RISING_TICKS,
    Ladder,
    Step,
    parse_signal,
)
from oomd.engine.plugin import PluginEnv, PluginRet
from oomd.kill import KillReport
from tests.support.harness import Harness, always_acting, plugin
from tests.support.tree import FakeProc, FakeTree

MB = 1 << 20

# -- the state machine ------------------------------------------------------------


def ladder(grace: float = 5.0, started: float = 100.0) -> Ladder:
    lad = Ladder("/cg/victim", 7, signal.SIGTERM, grace, started, "abc")
    lad.set_baseline(1.0, 2.0)
    return lad


def test_waits_through_the_grace_period_then_escalates_at_its_end() -> None:
    lad = ladder()
    for t in (100.0, 101.0, 104.9):
        assert lad.step(t, True, 1.0, 2.0) == (Step.WAIT, "")
    step, reason = lad.step(105.0, True, 1.0, 2.0)
    assert step is Step.ESCALATE
    assert reason == "still there after its 5s grace period"


def test_a_victim_gone_within_the_grace_period_needs_no_sigkill() -> None:
    lad = ladder()
    assert lad.step(101.0, True, 1.0, 2.0)[0] is Step.WAIT
    assert lad.step(102.5, False, None, None) == (Step.EXITED, "exited 2.5s after SIGTERM")
    # Gone wins over a passed deadline too: nothing is left to kill.
    assert ladder().step(200.0, False, None, None)[0] is Step.EXITED


def test_pressure_rising_past_the_bound_escalates_early() -> None:
    lad = ladder()
    values = [1.0 + PRESSURE_RISE * i / RISING_TICKS for i in range(1, RISING_TICKS + 1)]
    for i, value in enumerate(values[:-1]):
        assert lad.step(100.5 + i * 0.1, True, value, 2.0)[0] is Step.WAIT
    step, reason = lad.step(101.0, True, values[-1], 2.0)
    assert step is Step.ESCALATE
    assert reason.startswith("its memory pressure kept rising (1.00 -> 11.00)")


def test_the_hosts_pressure_counts_too_and_a_dip_restarts_the_count() -> None:
    lad = ladder()
    assert lad.step(100.1, True, None, 20.0)[0] is Step.WAIT  # one rise
    assert lad.step(100.2, True, None, 19.0)[0] is Step.WAIT  # a dip: count restarts
    assert lad.step(100.3, True, None, 25.0)[0] is Step.WAIT
    assert lad.step(100.4, True, None, 30.0)[0] is Step.WAIT
    step, reason = lad.step(100.5, True, None, 31.0)
    assert step is Step.ESCALATE
    assert "the host's memory pressure kept rising (2.00 -> 31.00)" in reason


def test_a_high_but_steady_pressure_does_not_escalate() -> None:
    lad = ladder()
    for i in range(20):
        assert lad.step(100.0 + i * 0.2, True, 60.0, 60.0)[0] is Step.WAIT


def test_a_ladder_survives_encoding_across_a_restart_with_its_deadline() -> None:
    lad = ladder(grace=30.0, started=100.0)
    text = lad.encode(now=110.0, wall=5000.0)  # 20 s left
    assert text == "SIGTERM 5020.000 abc 0"
    # The new daemon's monotonic clock reads 7.0; 3 s of wall time passed.
    back = Ladder.decode(text, "/cg/victim", 7, now=7.0, wall=5003.0)
    assert back is not None
    assert back.deadline == pytest.approx(24.0)
    assert back.step(23.9, True, None, None)[0] is Step.WAIT
    assert back.step(24.0, True, None, None)[0] is Step.ESCALATE


@pytest.mark.parametrize("text", ["", "SIGTERM", "SIGFOO 1 a 0", "SIGTERM x a 0", "SIGTERM 1 a b"])
def test_a_garbled_ladder_xattr_is_ignored(text: str) -> None:
    assert Ladder.decode(text, "/cg", 1, 0.0, 0.0) is None


def test_kill_signal_spellings(tmp_path: Path) -> None:
    env = PluginEnv(str(tmp_path))
    assert [parse_signal(v, env) for v in ("SIGTERM", "term", "15", "SIGKILL")] == [
        "SIGTERM",
        "SIGTERM",
        "SIGTERM",
        "SIGKILL",
    ]
    for bad in ("SIGSTOP", "nope", "0", "99"):
        with pytest.raises(ValueError, match="expected one of SIGTERM"):
            parse_signal(bad, env)


# -- the kill core driving it -------------------------------------------------------


class SignalKiller:
    """A fake killer: records every signal and kill; never signals anything."""

    def __init__(self, tree: FakeTree) -> None:
        self.tree = tree
        self.calls: list[tuple[str, str]] = []

    def _rel(self, cgroup_dir: str) -> str:
        return str(Path(cgroup_dir).relative_to(self.tree.root))

    def kill(self, cgroup_dir: str, *, freeze: bool = False, reap: bool = True) -> KillReport:
        self.calls.append(("SIGKILL", self._rel(cgroup_dir)))
        return KillReport(killed=2, pids=[4242, 4343])

    def signal(self, cgroup_dir: str, sig: int) -> KillReport:
        self.calls.append((signal.Signals(sig).name, self._rel(cgroup_dir)))
        return KillReport(killed=1, pids=[4242])

    def signal_process(self, cgroup_dir: str, pid: int, sig: int) -> KillReport:
        self.calls.append((f"{signal.Signals(sig).name} {pid}", self._rel(cgroup_dir)))
        return KillReport(killed=1, pids=[pid])

    def largest_process(self, cgroup_dir: str) -> tuple[int, str, int] | None:
        return (4343, cgroup_dir, 300 * MB)


@pytest.fixture
def killer(tree: FakeTree) -> SignalKiller:
    return SignalKiller(tree)


@pytest.fixture
def h(tree: FakeTree, proc: FakeProc, killer: SignalKiller) -> Harness:
    return Harness(tree, proc, killer)


def load(h: Harness, dry_run: bool = False, **args: Any) -> KillPlugin:
    h.load(
        always_acting(
            plugin(
                "kill_by_memory_size_or_growth",
                cgroup="workload.slice/*",
                post_action_delay="30",
                **args,
            )
        ),
        dry_run=dry_run,
    )
    assert h.engine is not None
    action = h.engine.rulesets[0].actions[0]
    assert isinstance(action, KillPlugin)
    return action


def victim(h: Harness, rel: str = "workload.slice/big", mb: int = 100) -> None:
    h.tree.cgroup(rel, current=mb * MB, stat={"anon": mb * MB}, procs=[4242], populated=True)


def test_sigterm_then_wait_then_sigkill_at_the_end_of_the_grace_period(
    h: Harness, killer: SignalKiller, oolog: Path
) -> None:
    victim(h)
    victim(h, "workload.slice/small", 10)
    load(h, kill_signal="SIGTERM", grace_period="5")
    h.tick()
    assert killer.calls == [("SIGTERM", "workload.slice/big")]
    assert len(h.kills) == 1
    assert h.kills[0].startswith("oomd kill: 0.00 0.00 0.00 workload.slice/big 104857600 ")
    assert h.tree.get_xattr("workload.slice/big", "trusted.oomd_ooms") == b"1"
    assert h.tree.get_xattr("workload.slice/big", LADDER_XATTR) is not None
    # The daemon keeps ticking through the grace period; nothing more is sent.
    h.tick(4)
    assert killer.calls == [("SIGTERM", "workload.slice/big")]
    h.tick()
    assert killer.calls == [("SIGTERM", "workload.slice/big"), ("SIGKILL", "workload.slice/big")]
    assert len(h.kills) == 1  # the kill line once
    escalations = [line for line in h.kmsg.lines if line.startswith("oomd escalate: ")]
    assert len(escalations) == 1
    assert escalations[0].startswith("oomd escalate: workload.slice/big SIGKILL after 5.0s")
    assert "Escalating to SIGKILL: " in oolog.read_text()
    assert h.tree.get_xattr("workload.slice/big", LADDER_XATTR) is None
    # oomd_kill: one at SIGTERM, plus the one pid SIGKILL found that SIGTERM had not.
    assert h.tree.get_xattr("workload.slice/big", "trusted.oomd_kill") == b"2"
    assert h.stats.get("oomd.kills") == 1
    assert h.stats.get("oomd.kill_escalations") == 1
    # Then the ruleset pauses for post_action_delay, as after any kill.
    h.tick(29)
    assert len(killer.calls) == 2


def test_a_victim_that_exits_in_its_grace_period_is_not_sigkilled(
    h: Harness, killer: SignalKiller, oolog: Path
) -> None:
    victim(h)
    victim(h, "workload.slice/small", 10)
    load(h, kill_signal="SIGTERM", grace_period="10")
    h.tick()
    h.tick(2)
    h.tree.cgroup("workload.slice/big", procs=[], populated=False)
    h.tick()
    assert killer.calls == [("SIGTERM", "workload.slice/big")]
    assert "exited 3.0s after SIGTERM; no SIGKILL needed" in oolog.read_text()
    assert h.tree.get_xattr("workload.slice/big", LADDER_XATTR) is None
    h.tick(15)  # paused (post_action_delay 30): nothing new
    assert killer.calls == [("SIGTERM", "workload.slice/big")]


def test_a_victim_removed_and_recreated_in_its_grace_period_is_left_alone(
    h: Harness, killer: SignalKiller
) -> None:
    victim(h)
    load(h, kill_signal="SIGTERM", grace_period="5")
    h.tick()
    # Re-created: the new directory exists before the old one is gone, so its inode
    # differs (a filesystem may reuse a freed inode number at once).
    old = h.tree.path("workload.slice/big")
    old.rename(h.tree.path("workload.slice/.old"))
    victim(h)
    h.tree.remove("workload.slice/.old")
    h.tick(6)
    assert killer.calls == [("SIGTERM", "workload.slice/big")]


def test_rising_victim_pressure_escalates_before_the_grace_period_ends(
    h: Harness, killer: SignalKiller
) -> None:
    victim(h)
    h.tree.set_pressure("workload.slice/big", 2.0, 2.0, 2.0)
    load(h, kill_signal="SIGTERM", grace_period="60")
    h.tick()
    for value in (5.0, 9.0, 14.0):
        h.tree.set_pressure("workload.slice/big", value, value, value)
        h.tick()
    assert killer.calls == [("SIGTERM", "workload.slice/big"), ("SIGKILL", "workload.slice/big")]
    line = next(x for x in h.kmsg.lines if x.startswith("oomd escalate: "))
    assert "its memory pressure kept rising (2.00 -> 14.00)" in line


def test_a_restarted_daemon_resumes_the_pending_ladder_without_a_second_sigterm(
    tree: FakeTree, proc: FakeProc, killer: SignalKiller, oolog: Path
) -> None:
    first = Harness(tree, proc, killer)
    victim(first)
    victim(first, "workload.slice/small", 10)
    load(first, kill_signal="SIGTERM", grace_period="5")
    first.tick()
    first.tick(2)
    # The daemon restarts: a new engine, a new clock, the same tree.
    second = Harness(tree, proc, killer)
    second.clock.now = 50.0
    load(second, kill_signal="SIGTERM", grace_period="5")
    second.tick()
    assert killer.calls == [("SIGTERM", "workload.slice/big")]
    assert "Resuming the kill ladder on " in oolog.read_text()
    assert second.kills == []  # the kill line was written once, before the restart
    # The deadline is kept in wall-clock time (the fake clocks leave it alone): 5 s
    # from the SIGTERM, i.e. 5 s from this daemon's first tick.
    second.tick(3)
    assert killer.calls == [("SIGTERM", "workload.slice/big")]
    second.tick(2)
    assert killer.calls == [("SIGTERM", "workload.slice/big"), ("SIGKILL", "workload.slice/big")]


def test_a_restarted_daemon_past_the_deadline_escalates_at_once(
    tree: FakeTree, proc: FakeProc, killer: SignalKiller
) -> None:
    first = Harness(tree, proc, killer)
    victim(first)
    load(first, kill_signal="SIGTERM", grace_period="5")
    first.tick()
    tree.set_xattr("workload.slice/big", LADDER_XATTR, b"SIGTERM 1.0 abc 0")  # long past
    second = Harness(tree, proc, killer)
    load(second, kill_signal="SIGTERM", grace_period="5")
    second.tick()
    assert killer.calls == [("SIGTERM", "workload.slice/big"), ("SIGKILL", "workload.slice/big")]


def test_dry_run_says_what_the_ladder_would_do_and_signals_nothing(
    h: Harness, killer: SignalKiller, oolog: Path
) -> None:
    victim(h)
    load(h, dry_run=True, kill_signal="SIGTERM", grace_period="5")
    h.tick()
    assert killer.calls == []
    assert "would have sent SIGTERM to " in oolog.read_text()
    assert "SIGKILL after 5s if still there" in oolog.read_text()
    assert [k.split()[-2] for k in h.kills] == ["killer:(dry)kill_by_memory_size_or_growth"]
    assert h.tree.get_xattr("workload.slice/big", LADDER_XATTR) is None


def test_largest_process_mode_signals_one_process(h: Harness, killer: SignalKiller) -> None:
    victim(h)
    load(h, kill_mode="largest_process")
    h.tick()
    assert killer.calls == [("SIGKILL 4343", "workload.slice/big")]
    assert len(h.kills) == 1


def test_largest_process_mode_with_a_ladder(h: Harness, killer: SignalKiller) -> None:
    victim(h)
    h.tree.cgroup("workload.slice/big", procs=[4343])
    load(h, kill_mode="largest_process", kill_signal="TERM", grace_period="2")
    h.tick()
    h.tick(2)
    assert killer.calls == [
        ("SIGTERM 4343", "workload.slice/big"),
        ("SIGKILL 4343", "workload.slice/big"),
    ]


def test_largest_process_mode_kills_an_oom_group_whole(h: Harness, killer: SignalKiller) -> None:
    victim(h)
    h.tree.cgroup("workload.slice/big", oom_group=True)
    load(h, kill_mode="largest_process")
    h.tick()
    assert killer.calls == [("SIGKILL", "workload.slice/big")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"grace_period": "5"}, "grace_period needs a gentler kill_signal"),
        ({"kill_signal": "SIGTERM"}, "kill_signal SIGTERM needs a grace_period > 0"),
        ({"kill_signal": "SIGSTOP", "grace_period": "1"}, "expected one of SIGTERM"),
        ({"kill_signal": "SIGTERM", "grace_period": "-1"}, "grace_period"),
        ({"kill_mode": "process"}, "must be one of 'cgroup', 'largest_process'"),
    ],
)
def test_bad_ladder_args_are_config_errors(h: Harness, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(h, **args)
    assert message in "\n".join(e.value.problems)


def test_a_ladder_returns_async_while_it_waits(h: Harness) -> None:
    victim(h)
    action = load(h, kill_signal="SIGTERM", grace_period="5")
    assert h.run(action) is PluginRet.ASYNC_PAUSED
    assert h.run(action) is PluginRet.ASYNC_PAUSED
    assert h.run(action, advance=5) is PluginRet.STOP
