"""A small incident on a fake tree, recorded through the daemon's readers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oomd.recorder import Recorder, trace_meta
from oomd.trace import TraceWriter
from tests.support.harness import Harness
from tests.support.tree import FakeProc, FakeTree

MIB = 1 << 20


def config(threshold: int = 50, duration: int = 2) -> dict[str, Any]:
    return {
        "rulesets": [
            {
                "name": "protect",
                "detectors": [
                    [
                        "pressure",
                        {
                            "name": "pressure_above",
                            "args": {
                                "cgroup": "workload.slice",
                                "resource": "memory",
                                "threshold": str(threshold),
                                "duration": str(duration),
                            },
                        },
                    ]
                ],
                "actions": [
                    {
                        "name": "kill_by_memory_size_or_growth",
                        "args": {"cgroup": "workload.slice/*", "post_action_delay": "5"},
                    }
                ],
            }
        ]
    }


def write_config(path: Path, **kw: Any) -> str:
    path.write_text(json.dumps(config(**kw)))
    return str(path)


def record_incident(tmp: Path, out: str, ticks: int = 20, **kw: Any) -> list[str]:
    """Tick the real engine over a tree whose workload.slice comes under growing
    pressure while b grows; record every tick into ``out``. Returns the kill lines."""
    tree = FakeTree(tmp / "cgroup")
    proc = FakeProc(tmp / "proc")
    for name, size in (("a", 100), ("b", 200), ("c", 50)):
        tree.cgroup(
            f"workload.slice/{name}.service",
            current=size * MIB,
            pressure=(0, 0, 0),
            stat={"anon": size * MIB, "file": 0},
            populated=True,
        )
    tree.cgroup("workload.slice", current=350 * MIB, pressure=(0, 0, 0))
    h = Harness(tree, proc)
    h.load(config(**kw), dry_run=True)
    writer = TraceWriter(
        out,
        trace_meta(
            h.ctx,
            interval=1,
            dry_run=True,
            own_cgroup=None,
            controllers=None,
            config_text=json.dumps(config(**kw)),
            source="test",
        ),
    )
    recorder = Recorder(h.ctx, writer)
    for t in range(ticks):
        avg10 = min(95.0, max(0.0, (t - 3) * 12.0))
        tree.set_pressure("workload.slice", avg10, avg10 / 2, avg10 / 4, total=t * 100000)
        tree.set_current("workload.slice/b.service", (200 + 40 * t) * MIB)
        tree.write(
            "workload.slice/b.service", "memory.stat", f"anon {(200 + 40 * t) * MIB}\nfile 0\n"
        )
        proc.meminfo(MemAvailable=(4096 - 40 * t) * MIB)
        h.tick()
        recorder.end_tick()
    recorder.stop()
    writer.close()
    return h.kills
