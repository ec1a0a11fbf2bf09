"""The kill ladder (issue 17) on real cgroups under the host's cgroup2 mount, with
processes the test spawned: a child that traps SIGTERM and exits within the grace
period is never SIGKILLed; one that ignores SIGTERM is SIGKILLed when the grace period
ends; the daemon's ticks (another ruleset's detector included) go on meanwhile.
Everything created is removed afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oomd.cgroup.context import OomdContext
from oomd.cgroup.system import SystemContext
from oomd.config.compiler import compile_config
from oomd.config.parser import parse_config
from oomd.engine.engine import Engine
from oomd.engine.plugin import Detector, PluginEnv
from oomd.host import Host
from oomd.kill import Killer
from oomd.log import NullKmsg
from oomd.plugins import registry
from oomd.stats import Stats
from tests.support.procs import Spawner
from tests.support.real_cgroups import move, real_cgroup

GRACE = 1.5
TICK = 0.1

#: Traps SIGTERM (writes argv[1] and exits 0), or ignores it with argv[2] == "ignore".
CHILD = """
import signal, sys, time
def term(signum, frame):
    with open(sys.argv[1], "w") as f:
        f.write("clean shutdown")
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if sys.argv[2] == "ignore" else term)
print("ready", flush=True)
while True:
    time.sleep(60)
"""


class Counting(Detector):
    """Counts the ticks it runs in (another ruleset, to see ticks keep going)."""

    name = "counting_for_ladder_test"
    ticks = 0

    def detect(self, ctx: OomdContext) -> bool:
        type(self).ticks += 1
        return False


@pytest.fixture(autouse=True)
def counting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        registry._external, Counting.name, registry.External(Counting.name, "test", cls=Counting)
    )
    Counting.ticks = 0


@pytest.fixture
def base() -> Iterator[Path]:
    with real_cgroup("oomd-ladder-test") as path:
        yield path


def child(spawner: Spawner, cgroup: Path, marker: Path, mode: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(marker), mode],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    spawner.children.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # its SIGTERM disposition is set
    move(proc.pid, cgroup)
    return proc


def engine(base: Path) -> tuple[Engine, PluginEnv]:
    env = PluginEnv(
        cgroup_fs=str(base),
        system=SystemContext(),
        kmsg=NullKmsg(),
        stats=Stats(),
        host=Host(killer=Killer()),
    )
    config: dict[str, Any] = {
        "rulesets": [
            {
                "name": "ladder",
                "detectors": [["always", {"name": "continue"}]],
                "actions": [
                    {
                        "name": "kill_by_pressure",
                        "args": {
                            "cgroup": "workload/*",
                            "resource": "memory",
                            "kill_signal": "SIGTERM",
                            "grace_period": str(GRACE),
                            "prefer": "workload/victim",
                            "post_action_delay": "600",
                        },
                    }
                ],
            },
            {
                "name": "other",
                "detectors": [["count", {"name": Counting.name}]],
                "actions": [{"name": "continue"}],
            },
        ]
    }
    compiled = compile_config(parse_config(json.dumps(config), "ladder.json"), env)
    return compiled.engine, env


def tick_until(eng: Engine, base: Path, done: Any, limit: float) -> int:
    """Tick every TICK seconds until ``done()`` or ``limit`` seconds; returns ticks."""
    ctx = OomdContext(str(base), SystemContext())
    ticks = 0
    end = time.monotonic() + limit
    while time.monotonic() < end:
        eng.tick(ctx)
        ticks += 1
        if done():
            break
        time.sleep(TICK)
    return ticks


def lines(env: PluginEnv, prefix: str) -> list[str]:
    assert isinstance(env.kmsg, NullKmsg)
    return [line for line in env.kmsg.lines if line.startswith(prefix)]


def setup(base: Path) -> tuple[Path, Path]:
    victim = base / "workload" / "victim"
    bystander = base / "workload" / "bystander"
    victim.mkdir(parents=True)
    bystander.mkdir()
    return victim, bystander


def test_a_child_that_traps_sigterm_shuts_down_cleanly_and_is_not_sigkilled(
    base: Path, spawner: Spawner, tmp_path: Path
) -> None:
    victim, bystander = setup(base)
    marker = tmp_path / "marker"
    proc = child(spawner, victim, marker, "trap")
    other = child(spawner, bystander, tmp_path / "other", "trap")
    eng, env = engine(base)
    ticks = tick_until(eng, base, lambda: proc.poll() is not None, GRACE * 4)
    ticks += tick_until(eng, base, lambda: False, 0.5)  # the ladder notices the exit

    assert Spawner.is_dead(proc)
    assert proc.returncode == 0  # its own exit, not -SIGKILL
    assert marker.read_text() == "clean shutdown"
    assert len(lines(env, "oomd kill: ")) == 1
    assert lines(env, "oomd kill: ")[0].split()[5] == "workload/victim"
    assert lines(env, "oomd escalate: ") == []
    assert env.stats.get("oomd.kills") == 1
    assert not Spawner.is_dead(other, timeout=0.2)
    assert Counting.ticks == ticks


def test_a_child_that_ignores_sigterm_is_sigkilled_when_the_grace_period_ends(
    base: Path, spawner: Spawner, tmp_path: Path
) -> None:
    victim, bystander = setup(base)
    proc = child(spawner, victim, tmp_path / "marker", "ignore")
    other = child(spawner, bystander, tmp_path / "other", "trap")
    eng, env = engine(base)
    started = time.monotonic()
    ticks = tick_until(eng, base, lambda: bool(lines(env, "oomd kill: ")), 5.0)
    # Through the grace period the victim lives on and the daemon keeps ticking.
    ticks += tick_until(eng, base, lambda: False, GRACE / 2)
    assert proc.poll() is None
    assert lines(env, "oomd escalate: ") == []
    ticks += tick_until(eng, base, lambda: proc.poll() is not None, GRACE * 4)

    assert Spawner.is_dead(proc)
    assert proc.returncode == -9
    assert time.monotonic() - started >= GRACE
    escalations = lines(env, "oomd escalate: ")
    assert len(escalations) == 1
    assert escalations[0].startswith("oomd escalate: workload/victim SIGKILL after ")
    assert "still there after its 1.5s grace period" in escalations[0]
    assert len(lines(env, "oomd kill: ")) == 1
    assert not (tmp_path / "marker").exists()
    assert not Spawner.is_dead(other, timeout=0.2)
    assert Counting.ticks == ticks
