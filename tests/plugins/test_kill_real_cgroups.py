"""Kill plugins end to end on real cgroups: the test creates its own cgroup2 directories
under the host's cgroup2 mount, moves processes it spawned into them, and checks that
exactly the victim's processes die, through cgroup.kill (with and without freezing) and
through the pidfd path. Everything it creates is removed afterwards."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from oomd.cgroup.context import OomdContext
from oomd.cgroup.system import SystemContext
from oomd.config.compiler import compile_config
from oomd.config.parser import parse_config
from oomd.engine.kill_base import KillPlugin
from oomd.engine.plugin import PluginEnv
from oomd.host import Host
from oomd.kill import Killer
from oomd.log import NullKmsg
from oomd.stats import Stats
from tests.support.procs import Spawner
from tests.support.real_cgroups import move, real_cgroup


@pytest.fixture
def cgroup_base() -> Iterator[Path]:
    with real_cgroup("oomd-plugin-test") as base:
        yield base


@pytest.mark.parametrize(
    ("mode", "kernelkill"),
    [("cgroup.kill", False), ("cgroup.kill", True), ("pidfd", False)],
    ids=["cgroup.kill", "freeze+cgroup.kill", "pidfd"],
)
def test_kill_by_pressure_kills_exactly_the_preferred_cgroup(
    cgroup_base: Path, spawner: Spawner, mode: str, kernelkill: bool
) -> None:
    if mode == "cgroup.kill" and not (cgroup_base / "cgroup.kill").exists():
        pytest.skip("kernel without cgroup.kill")
    procs: dict[str, list[int]] = {}
    for name, count in (("a", 1), ("b", 2), ("c", 1)):
        d = cgroup_base / "workload" / name
        d.mkdir(parents=True)
        procs[name] = []
        for _ in range(count):
            child = spawner.sleeper()
            move(child.pid, d)
            procs[name].append(child.pid)
    # Idle cgroups all have 0 pressure: the PREFER xattr decides.
    os.setxattr(cgroup_base / "workload" / "b", "trusted.oomd_prefer", b"")
    children = {c.pid: c for c in spawner.children}

    killer = Killer(use_cgroup_kill=mode == "cgroup.kill")
    env = PluginEnv(
        cgroup_fs=str(cgroup_base),
        system=SystemContext(),
        kmsg=NullKmsg(),
        stats=Stats(),
        host=Host(killer=killer),
    )
    config = {
        "rulesets": [
            {
                "name": "real",
                "detectors": [["always", {"name": "continue"}]],
                "actions": [
                    {
                        "name": "kill_by_pressure",
                        "args": {
                            "cgroup": "workload/*",
                            "resource": "memory",
                            "kernelkill": str(kernelkill).lower(),
                        },
                    }
                ],
            }
        ]
    }
    engine = compile_config(parse_config(json.dumps(config), "real.json"), env).engine
    action = engine.rulesets[0].actions[0]
    assert isinstance(action, KillPlugin)
    engine.tick(OomdContext(str(cgroup_base), env.system))

    assert all(Spawner.is_dead(children[pid]) for pid in procs["b"])
    assert not any(Spawner.is_dead(children[pid], timeout=0.2) for pid in procs["a"] + procs["c"])
    assert isinstance(env.kmsg, NullKmsg)
    assert [line for line in env.kmsg.lines if line.startswith("oomd kill: ")] == [
        "oomd kill: 0.00 0.00 0.00 workload/b 0 ruleset:[real] detectorgroup:[always] "
        "killer:kill_by_pressure v2"
    ]
    victim = cgroup_base / "workload" / "b"
    assert os.getxattr(victim, "trusted.oomd_ooms") == b"1"
    assert os.getxattr(victim, "trusted.oomd_kill") == b"2"
    assert env.stats.get("oomd.kills") == 1
    if kernelkill:
        assert (victim / "cgroup.freeze").read_text().strip() == "1"
