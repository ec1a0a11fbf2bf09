"""The flight recorder's cost: CPU per tick with and without it, and trace size per hour.

Our engine in-process (as profile_tick.py) on bench/run.py's fake tree, the ``rank``
config (every leaf's files read every tick: the most a tick records). Between ticks a
share of the leaves changes as a busy host's do: memory.current, five memory.stat
keys and the memory PSI line (untimed). Ticks with and without the recorder alternate
(which one runs first alternates too) so both see the same cache state. The recorder runs as the daemon's does
(``Recorder(threaded=True)``): "tick" is the tick's thread's CPU (the tick plus
``end_tick``), "writer" the writer thread's CPU per tick (off the tick: the daemon
sleeps meanwhile; the bench waits for it, untimed, before the next tick). Size per
hour = bytes per tick (after the window warms up) x 3600 (``-i 1``).

    .venv/bin/python bench/record.py --leaves 1000 --ticks 60 --change 0,0.1,1 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

from run import build_tree, config, layout

from oomd import log
from oomd.cgroup.context import OomdContext
from oomd.cgroup.system import SystemContext
from oomd.config.compiler import compile_config
from oomd.config.parser import parse_config
from oomd.engine.plugin import PluginEnv
from oomd.log import NullKmsg
from oomd.recorder import Recorder, trace_meta
from oomd.trace import TraceWriter


def mutate(tree: str, leaves: list[str], share: float, t: int) -> None:
    count = int(len(leaves) * share)
    for i, rel in enumerate(leaves[:count]):
        d = f"{tree}/{rel}"
        current = (16 + (t * 7 + i) % 64) << 20
        with open(f"{d}/memory.current", "w") as f:
            f.write(f"{current}\n")
        with open(f"{d}/memory.stat", "r+") as f:
            lines = f.read().splitlines()
            for k in range(5):
                key = lines[k].split(" ")[0]
                lines[k] = f"{key} {current + k * 4096 + t}"
            f.seek(0)
            f.write("\n".join(lines) + "\n")
            f.truncate()
        with open(f"{d}/memory.pressure", "w") as f:
            avg = (t % 50) / 10
            f.write(
                f"some avg10={avg:.2f} avg60={avg / 2:.2f} avg300=0.00 total={t * 1000 + i}\n"
                f"full avg10={avg:.2f} avg60={avg / 2:.2f} avg300=0.00 total={t * 900 + i}\n"
            )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leaves", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--change", default="0,0.1,1", help="shares of leaves changing per tick")
    parser.add_argument("--dir", default="/dev/shm")
    parser.add_argument("--repeat", type=int, default=1, help="runs per share (to see noise)")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="oomd-bench-record-", dir=args.dir)
    log.set_output_fd(os.open(os.devnull, os.O_WRONLY))
    try:
        tree = os.path.join(base, "tree")
        build_tree(tree, args.leaves, 1)
        leaves = layout(args.leaves, 1)
        shares = [float(s) for s in args.change.split(",")]
        for share in [s for s in shares for _ in range(args.repeat)]:
            env = PluginEnv(cgroup_fs=tree, system=SystemContext(), kmsg=NullKmsg(), dry_run=True)
            ir = parse_config(json.dumps(config("rank", 1)), "bench.json")
            plain = compile_config(ir, env).engine
            recorded = compile_config(ir, env).engine
            ctx_plain = OomdContext(tree, SystemContext())
            ctx_rec = OomdContext(tree, SystemContext())
            path = os.path.join(base, f"trace-{share}")
            writer = TraceWriter(
                path,
                trace_meta(
                    ctx_rec,
                    interval=1,
                    dry_run=True,
                    own_cgroup=None,
                    controllers=None,
                    config_text="",
                    source="bench",
                ),
            )
            recorder = Recorder(ctx_rec, writer, threaded=True)
            cost = {"plain": 0.0, "recorded": 0.0, "writer": 0.0}
            warm = 5
            size_at_warm = 0
            for t in range(args.ticks + warm):
                mutate(tree, leaves, share, t)
                before = recorder.store_cpu
                plain_cpu = rec_cpu = 0.0
                for which in (0, 1) if t % 2 else (1, 0):  # alternate the order
                    start = time.thread_time()
                    if which:
                        recorded.tick(ctx_rec)
                        recorder.end_tick()
                        rec_cpu = time.thread_time() - start
                        recorder.sync()
                    else:
                        plain.tick(ctx_plain)
                        plain_cpu = time.thread_time() - start
                if t == warm - 1:
                    size_at_warm = os.path.getsize(path)
                if t >= warm:
                    cost["plain"] += plain_cpu
                    cost["recorded"] += rec_cpu
                    cost["writer"] += recorder.store_cpu - before
            size = os.path.getsize(path) - size_at_warm
            recorder.stop()
            writer.close()
            plain_ms = cost["plain"] / args.ticks * 1000
            rec_ms = cost["recorded"] / args.ticks * 1000
            writer_ms = cost["writer"] / args.ticks * 1000
            per_hour = size / args.ticks * 3600
            print(
                f"{args.leaves} leaves, {share:.0%} changing per tick: tick {plain_ms:.1f} ms CPU, "
                f"with recorder {rec_ms:.1f} ms (+{(rec_ms / plain_ms - 1) * 100:.1f} %), "
                f"writer {writer_ms:.1f} ms off the tick, "
                f"trace {size / args.ticks / 1024:.1f} KiB/tick = {per_hour / 2**20:.0f} MiB/hour at -i 1"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
