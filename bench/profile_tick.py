#!/usr/bin/env python3
"""Profile our engine's ticks in-process on one bench tree (no root needed).

    .venv/bin/python bench/profile_tick.py --leaves 10000 --depth 1 --config rank

prints the mean CPU time per tick and, with ``--profile``, the top of a cProfile of
the measured ticks; with ``--memory``, what the ticks keep allocated (tracemalloc,
from right before the first tick to after the last: bytes per leaf, top lines). The tree and config are bench/run.py's; logs go to /dev/null.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import build_tree, config

from oomd import log
from oomd.cgroup.context import OomdContext
from oomd.cgroup.system import SystemContext
from oomd.config.compiler import compile_config
from oomd.config.parser import parse_config
from oomd.engine.plugin import PluginEnv
from oomd.log import NullKmsg


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leaves", type=int, default=10000)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--config", default="rank", choices=("read", "rank"))
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--memory", action="store_true", help="tracemalloc, not CPU")
    parser.add_argument("--dir", default="/dev/shm")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="oomd-profile-", dir=args.dir)
    try:
        tree = os.path.join(base, "tree")
        build_tree(tree, args.leaves, args.depth)
        log.set_output_fd(os.open(os.devnull, os.O_WRONLY))
        env = PluginEnv(cgroup_fs=tree, system=SystemContext(), kmsg=NullKmsg())
        ir = parse_config(json.dumps(config(args.config, args.depth)), "bench.json")
        engine = compile_config(ir, env).engine
        ctx = OomdContext(tree, env.system)
        if args.memory:
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
        engine.tick(ctx)  # warm-up
        engine.tick(ctx)
        if args.memory:
            for _ in range(args.ticks):
                engine.tick(ctx)
            _print_memory(before, tracemalloc.take_snapshot(), args.leaves)
            return 0
        profiler = cProfile.Profile() if args.profile else None
        start = time.process_time()
        if profiler is not None:
            profiler.enable()
        for _ in range(args.ticks):
            engine.tick(ctx)
        if profiler is not None:
            profiler.disable()
        per_tick = (time.process_time() - start) / args.ticks
        print(
            f"{args.config} {args.leaves} leaves depth {args.depth}: {per_tick * 1000:.1f} ms CPU/tick"
        )
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def _print_memory(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, leaves: int) -> None:
    _, peak = tracemalloc.get_traced_memory()
    diff = after.compare_to(before, "lineno")
    kept = sum(d.size_diff for d in diff)
    print(
        f"kept after the ticks: {kept / 1024:.0f} KiB ({kept / leaves:.0f} B per leaf); "
        f"traced peak {peak / 1024:.0f} KiB ({peak / leaves:.0f} B per leaf)"
    )
    for d in diff[:15]:
        frame = d.traceback[0]
        print(
            f"  {d.size_diff / 1024:8.0f} KiB {d.count_diff:7d} blocks  "
            f"{frame.filename.rsplit('/src/', 1)[-1]}:{frame.lineno}"
        )


if __name__ == "__main__":
    sys.exit(main())
