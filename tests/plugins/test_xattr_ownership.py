"""``user.oomd_avoid`` / ``user.oomd_prefer`` count only on cgroups owned by root (issue
12 item 6): a delegated user owns its cgroups and can set ``user.*`` xattrs on them, so
honouring them let a user push a kill onto someone else's cgroup. ``trusted.*`` (which
needs CAP_SYS_ADMIN) always counts.

Real cgroups: the test delegates one of its own cgroups to an unprivileged uid (chown, as
systemd delegates ``user@UID.service``), lets a process running as that uid set the
xattr, and checks which of the test's own processes the kill hits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oomd.cgroup.context import OomdContext
from oomd.cgroup.system import SystemContext
from oomd.config.compiler import compile_config
from oomd.config.parser import parse_config
from oomd.engine.plugin import PluginEnv
from oomd.host import Host
from oomd.kill import Killer
from oomd.log import NullKmsg
from oomd.stats import Stats
from tests.support.procs import Spawner
from tests.support.real_cgroups import move, real_cgroup

NOBODY = 65534


@pytest.fixture
def base() -> Iterator[Path]:
    with real_cgroup("oomd-xattr-owner") as path:
        yield path


def delegate(cgroup: Path, uid: int) -> None:
    """chown the cgroup and the files a delegate may write, as systemd's Delegate=."""
    for target in (cgroup, *(cgroup / n for n in ("cgroup.procs", "cgroup.subtree_control"))):
        os.chown(target, uid, uid)


def set_xattr_as(uid: int, path: Path, name: str) -> None:
    """setxattr from a process running as ``uid`` (proves the user can do it)."""
    code = f"import os; os.setuid({uid}); os.setxattr({str(path)!r}, {name!r}, b'1')"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def tick_once(base: Path) -> list[str]:
    env = PluginEnv(
        cgroup_fs=str(base),
        system=SystemContext(),
        kmsg=NullKmsg(),
        stats=Stats(),
        host=Host(killer=Killer()),
    )
    config = {
        "rulesets": [
            {
                "name": "owners",
                "detectors": [["always", {"name": "continue"}]],
                # kill_by_pressure: idle cgroups tie at 0, so preferences decide.
                "actions": [
                    {
                        "name": "kill_by_pressure",
                        "args": {"cgroup": "users/*", "resource": "memory"},
                    }
                ],
            }
        ]
    }
    engine = compile_config(parse_config(json.dumps(config), "owners.json"), env).engine
    engine.tick(OomdContext(str(base), env.system))
    assert isinstance(env.kmsg, NullKmsg)
    return [line.split()[5] for line in env.kmsg.lines if line.startswith("oomd kill: ")]


def populate(base: Path, spawner: Spawner, names: tuple[str, ...]) -> dict[str, int]:
    pids = {}
    for name in names:
        d = base / "users" / name
        d.mkdir(parents=True, exist_ok=True)
        child = spawner.sleeper()
        move(child.pid, d)
        pids[name] = child.pid
    return pids


def test_user_avoid_on_a_delegated_cgroup_is_ignored(base: Path, spawner: Spawner) -> None:
    """'alice' (first by path, so the default choice) is delegated to nobody, who sets
    user.oomd_avoid on it: the kill must still go to alice, not to 'bob'."""
    populate(base, spawner, ("alice", "bob"))
    alice = base / "users" / "alice"
    delegate(alice, NOBODY)
    set_xattr_as(NOBODY, alice, "user.oomd_avoid")
    assert tick_once(base) == ["users/alice"]


def test_user_prefer_on_a_delegated_cgroup_is_ignored(base: Path, spawner: Spawner) -> None:
    populate(base, spawner, ("alice", "bob"))
    bob = base / "users" / "bob"
    delegate(bob, NOBODY)
    set_xattr_as(NOBODY, bob, "user.oomd_prefer")
    assert tick_once(base) == ["users/alice"]


def test_user_avoid_on_a_root_owned_cgroup_counts(base: Path, spawner: Spawner) -> None:
    populate(base, spawner, ("alice", "bob"))
    os.setxattr(base / "users" / "alice", "user.oomd_avoid", b"1")
    assert tick_once(base) == ["users/bob"]


def test_trusted_avoid_counts_whoever_owns_the_cgroup(base: Path, spawner: Spawner) -> None:
    populate(base, spawner, ("alice", "bob"))
    alice = base / "users" / "alice"
    delegate(alice, NOBODY)
    os.setxattr(alice, "trusted.oomd_avoid", b"1")
    assert tick_once(base) == ["users/bob"]
