"""``--dry-run`` writes nothing anywhere (issue 12 item 2): every built-in plugin, as a
detector and as an action where it is one, runs several ticks under ``--dry-run`` on a
fake tree whose detectors all fire, and afterwards no file under the tree, the fake
/proc or the host's scratch directory changed, no xattr was set, no listed process was
signalled and systemctl was never run. (senpai changed memory.high and would write
/proc/sys/vm/swappiness.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from oomd.engine.plugin import Action, Detector
from oomd.plugins import registry
from tests.support.harness import Harness, plugin, ruleset
from tests.support.procs import Spawner

MB = 1 << 20
PATTERN = "workload.slice/*"

#: Args that make each plugin fire on the tree built below.
ARGS: dict[str, dict[str, Any]] = {
    "dump_cgroup_overview": {"cgroup": PATTERN},
    "exists": {"cgroup": PATTERN},
    "kernel_panic": {},
    "kill_by_io_cost": {"cgroup": PATTERN},
    "kill_by_memory_size_or_growth": {"cgroup": PATTERN},
    "kill_by_pg_scan": {"cgroup": PATTERN},
    "kill_by_pressure": {"cgroup": PATTERN, "resource": "memory"},
    "kill_by_swap_usage": {"cgroup": PATTERN},
    "memory_above": {"cgroup": PATTERN, "threshold": "1M", "duration": "0"},
    "memory_reclaim": {"cgroup": PATTERN, "duration": "10"},
    "nr_dying_descendants": {"cgroup": PATTERN, "count": "1"},
    "pressure_above": {"cgroup": PATTERN, "resource": "memory", "threshold": "1", "duration": "0"},
    "pressure_rising_beyond": {
        "cgroup": PATTERN,
        "resource": "memory",
        "threshold": "1",
        "duration": "0",
    },
    "pressure_trigger": {"cgroup": PATTERN, "resource": "memory"},
    "senpai": {"cgroup": PATTERN, "interval": "1", "modulate_swappiness": "true"},
    "swap_free": {"threshold_pct": "90"},
    "systemd_restart": {"service": "victim.service"},
}
FLOW = {"continue", "stop"}


def roles() -> list[tuple[str, str]]:
    found = []
    for name in registry.names():
        if name in FLOW:
            continue
        cls = registry.get(name)
        assert cls is not None
        if issubclass(cls, Detector):
            found.append((name, "detector"))
        if issubclass(cls, Action):
            found.append((name, "action"))
    return found


def snapshot(*roots: Path) -> dict[str, tuple[bytes | None, dict[str, bytes]]]:
    state: dict[str, tuple[bytes | None, dict[str, bytes]]] = {}
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for entry in [dirpath, *(os.path.join(dirpath, f) for f in files)]:
                content = None if os.path.isdir(entry) else Path(entry).read_bytes()
                xattrs = {n: os.getxattr(entry, n) for n in os.listxattr(entry)}
                state[entry] = (content, xattrs)
    return state


def build(h: Harness, spawner: Spawner, scratch: Path) -> list[Any]:
    children = []
    for i, name in enumerate(("a", "b")):
        child = spawner.sleeper()
        children.append(child)
        rel = f"workload.slice/{name}"
        h.tree.cgroup(
            rel,
            current=(200 + 100 * i) * MB,
            swap=50 * MB,
            pressure=(80.0, 70.0, 60.0),
            io_pressure=(80.0, 70.0, 60.0),
            stat={"anon": 150 * MB, "file": 50 * MB, "pgscan": 1000 * (i + 1)},
            procs=[child.pid],
            populated=True,
            nr_dying=5,
        )
        h.tree.write(rel, "cgroup.kill", "")
        h.tree.write(rel, "memory.swap.max", "max\n")
        h.tree.write(rel, "io.stat", "8:0 rbytes=1 wbytes=1 rios=1 wios=1 dbytes=0 dios=0\n")
    h.tree.write("workload.slice", "cgroup.events", "populated 1\nfrozen 0\n")
    h.proc.meminfo(total=8 << 30, free=64 * MB, swap_total=1 << 30, swap_free=32 * MB)
    h.proc.swaps((1 << 30, (1 << 30) - 32 * MB))
    h.proc.pressure("memory", 80.0, 70.0, 60.0)
    h.proc.pressure("io", 80.0, 70.0, 60.0)
    h.proc.vmstat(pswpout=1000, pgscan_kswapd=1000)
    (h.proc.root / "sys" / "vm").mkdir(parents=True)
    (h.proc.root / "sys" / "vm" / "swappiness").write_text("60\n")
    (h.proc.root / "sysrq-trigger").write_text("")
    # systemctl, were it run, would leave a mark in the scratch directory.
    systemctl = scratch / "no-systemctl"
    systemctl.write_text(f"#!/bin/sh\ntouch {scratch}/systemctl-ran\n")
    systemctl.chmod(0o755)
    return children


def test_every_builtin_plugin_is_covered() -> None:
    assert {name for name, _ in roles()} == set(ARGS)


@pytest.mark.parametrize(("name", "role"), roles(), ids=lambda v: str(v))
def test_dry_run_writes_nothing(
    harness: Harness, spawner: Spawner, tmp_path: Path, name: str, role: str
) -> None:
    h = harness
    children = build(h, spawner, tmp_path)
    tested = plugin(name, **ARGS[name])
    if role == "detector":
        config = ruleset("r", [("g", [tested])], [plugin("continue")])
    else:
        config = ruleset("r", [("g", [plugin("continue")])], [tested])
    h.load({"rulesets": [config]}, dry_run=True)
    for i in range(5):
        if i == 2:  # growth between ticks, for the detectors that look at change
            h.tree.set_current("workload.slice/b", 600 * MB)
            h.tree.write(
                "workload.slice/b", "memory.stat", f"anon {500 * MB}\nfile {MB}\npgscan 9000\n"
            )
            h.tree.set_pressure("workload.slice/b", 95.0, 90.0, 80.0)
            h.proc.pressure("memory", 95.0, 90.0, 80.0)
            h.proc.vmstat(pswpout=900000, pgscan_kswapd=90000)
        before = snapshot(tmp_path)
        h.tick(advance=2.0)
        after = snapshot(tmp_path)
        changed = sorted(
            path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
        )
        # Only the test's own log file may change.
        assert [p for p in changed if not p.endswith("olog.txt")] == [], f"tick {i}"
    assert not any(Spawner.is_dead(child, timeout=0) for child in children)
    if role == "action" and (name.startswith("kill_by") or name == "systemd_restart"):
        # The action did run its would-be kill (or restart), not skip it.
        assert h.kills and all("dry" in line for line in h.kills)
