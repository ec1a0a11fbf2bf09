"""Kills that wait for a prekill hook (upstream plugins/BaseKillPlugin.cpp
resumeFromPrekillHook, docs/prekill_hooks.md; ConfigCompilerTest.PrekillHook).

The hooks here are real processes (the exec hook) driven by files the test creates,
while the engine runs on the fake clock: the kill yields (ASYNC_PAUSED) each tick
until the hook finishes or the ruleset's prekill_hook_timeout window runs out."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tests.support.harness import Harness, plugin
from tests.support.procs import Spawner

MB = 1 << 20


def config(
    hooks: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None, timeout: int = 5
) -> dict[str, Any]:
    return {
        "rulesets": [
            {
                "name": "r",
                "detectors": [["g", plugin("continue")]],
                "actions": actions
                or [plugin("kill_by_memory_size_or_growth", cgroup="workload.slice/*", dry=True)],
                "prekill_hook_timeout": timeout,
                "post_action_delay": 100,
            }
        ],
        "prekill_hooks": hooks,
    }


def exec_hook(script: str, cgroup: str = "workload.slice/*") -> dict[str, Any]:
    return {
        "name": "exec_prekill_hook",
        "args": {"cgroup": cgroup, "argv": ["/bin/sh", "-c", script]},
    }


def tree(h: Harness) -> None:
    h.tree.cgroup("workload.slice/big", current=300 * MB, stat={"anon": 1})
    h.tree.cgroup("workload.slice/small", current=100 * MB, stat={"anon": 1})


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def tick_until_hook_done(h: Harness) -> None:
    """Tick without moving the fake clock until the waiting kill is resolved (the hook
    process is real, so it needs real time to exit)."""
    assert h.engine is not None
    for _ in range(500):
        h.tick(advance=0)
        if h.engine.rulesets[0]._suspended is None:
            return
        time.sleep(0.02)
    raise AssertionError("the hook never finished")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_hook_that_finishes_at_once_does_not_delay_the_kill(harness: Harness, oolog: Path) -> None:
    """ConfigCompilerTest.PrekillHook: a matching hook fires once per kill."""
    tree(harness)
    harness.load(config([{"name": "dummy_prekill_hook", "args": {"cgroup": "workload.slice"}}]))
    harness.tick()
    assert len(harness.kills) == 1
    assert oolog.read_text().count("Prekill hook fired on workload.slice/big") == 1


def test_kill_waits_for_a_running_hook_then_kills(
    harness: Harness, tmp_path: Path, oolog: Path
) -> None:
    go = tmp_path / "go"
    tree(harness)
    harness.load(
        config([exec_hook(f"while [ ! -e {go} ]; do sleep 0.02; done; echo dumped $OOMD_CGROUP")])
    )
    harness.tick()
    assert harness.kills == []
    assert (
        "Action=kill_by_memory_size_or_growth returned ASYNC. Yielding action chain."
        in oolog.read_text()
    )
    harness.tick()
    assert harness.kills == []
    assert "Still running pre-kill hook for Ruleset=r" in oolog.read_text()
    go.touch()
    tick_until_hook_done(harness)
    text = oolog.read_text()
    assert "pre-kill hook finished for Ruleset=r" in text
    assert "dumped workload.slice/big" in text
    assert len(harness.kills) == 1 and "workload.slice/big" in harness.kills[0]


def test_hook_past_the_timeout_is_killed_and_the_kill_proceeds(
    harness: Harness, tmp_path: Path, oolog: Path
) -> None:
    pidfile = tmp_path / "pid"
    tree(harness)
    harness.load(config([exec_hook(f"echo $$ > {pidfile}; exec sleep 60")], timeout=3))
    harness.tick()
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    hook_pid = int(pidfile.read_text())
    harness.tick(2)  # 2 s into the 3 s window: still waiting
    assert harness.kills == []
    harness.tick(2)  # 4 s: past the window
    assert "pre-kill hook timed out for Ruleset=r" in oolog.read_text()
    assert len(harness.kills) == 1
    assert not pid_alive(hook_pid)


def test_hook_environment_names_victim_and_ruleset(harness: Harness, tmp_path: Path) -> None:
    out = tmp_path / "env"
    tree(harness)
    harness.load(config([exec_hook(f"env > {out}.tmp && mv {out}.tmp {out}")]))
    harness.tick()
    wait_until(out.exists)
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["OOMD_CGROUP"] == "workload.slice/big"
    assert env["OOMD_CGROUP_PATH"] == str(harness.tree.path("workload.slice/big"))
    assert env["OOMD_RULESET"] == "r"
    assert env["OOMD_DETECTOR_GROUP"] == "g"
    assert len(env["OOMD_KILL_UUID"]) > 8


def test_two_kill_attempts_share_one_timeout_window(
    harness: Harness, tmp_path: Path, oolog: Path
) -> None:
    """docs/prekill_hooks.md: the window is set when the chain starts and shared by
    every kill action of that chain run; once it is over no more hooks fire."""
    pidfile = tmp_path / "pid"
    tree(harness)
    harness.tree.cgroup("other.slice/x", current=100 * MB, stat={"anon": 1})
    harness.load(
        config(
            [exec_hook(f"echo $$ >> {pidfile}; exec sleep 60", cgroup="/")],
            actions=[
                plugin(
                    "kill_by_memory_size_or_growth",
                    cgroup="workload.slice/*",
                    dry=True,
                    always_continue=True,
                ),
                plugin("kill_by_memory_size_or_growth", cgroup="other.slice/*", dry=True),
            ],
            timeout=5,
        )
    )
    harness.tick()  # t0: first kill fires a hook and waits
    wait_until(pidfile.exists)
    harness.tick(3)  # t0+3: still waiting
    assert harness.kills == []
    harness.tick(3)  # t0+6: window over: first kill goes ahead, second kills at once
    assert [k.split()[5] for k in harness.kills] == ["workload.slice/big", "other.slice/x"]
    assert len(pidfile.read_text().split()) == 1, "no second hook once the window is spent"
    assert oolog.read_text().count("pre-kill hook timed out for Ruleset=r") == 1


def test_victim_gone_while_the_hook_runs_means_no_kill(harness: Harness, tmp_path: Path) -> None:
    go = tmp_path / "go"
    tree(harness)
    harness.load(config([exec_hook(f"while [ ! -e {go} ]; do sleep 0.02; done")]))
    harness.tick()
    harness.tree.remove("workload.slice/big")
    go.touch()
    tick_until_hook_done(harness)
    assert harness.kills == []


def test_after_a_hook_a_vanished_candidate_drops_everything_below_it(
    harness: Harness, tmp_path: Path, spawner: Spawner
) -> None:
    """BaseKillPlugin::resumeFromPrekillHook: when the intended victim cannot be killed
    and a saved candidate has vanished meanwhile, the candidates ranked below it are
    dropped too (someone else did the job); nothing further is killed."""
    go = tmp_path / "go"
    dead = spawner.sleeper()
    dead.kill()
    dead.wait()
    live = spawner.sleeper()
    harness.tree.cgroup("workload.slice/a", current=300 * MB, stat={"anon": 1}, procs=[dead.pid])
    harness.tree.cgroup("workload.slice/b", current=200 * MB, stat={"anon": 1})
    harness.tree.cgroup("workload.slice/c", current=100 * MB, stat={"anon": 1}, procs=[live.pid])
    harness.load(
        config(
            [exec_hook(f"while [ ! -e {go} ]; do sleep 0.02; done")],
            actions=[plugin("kill_by_memory_size_or_growth", cgroup="workload.slice/*")],
        )
    )
    harness.tick()
    harness.tree.remove("workload.slice/b")
    go.touch()
    tick_until_hook_done(harness)
    assert harness.kills == []
    assert not spawner.is_dead(live, timeout=0.2)
