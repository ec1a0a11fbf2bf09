"""``oomd record -C CONFIG -o FILE``: record what a config's plugins read.

Runs the config's engine as a dry run (nothing is killed; would-be kills are stored
as events) on the host's cgroup tree, tick by tick, and stores every file its
readers opened in a trace (oomd.trace). ``--cgroup PATTERN`` (repeatable) also
records the usual files of the cgroups a pattern matches every tick, so a replay of
another config that looks at them has their history.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Sequence

from oomd import log
from oomd.cgroup import mount
from oomd.cgroup.context import CgroupContext, OomdContext
from oomd.cgroup.path import parse_pattern_list
from oomd.cgroup.system import SystemContext
from oomd.config.compiler import compile_config
from oomd.config.errors import ConfigError
from oomd.config.parser import load_config
from oomd.daemon import own_cgroup
from oomd.engine.plugin import PluginEnv
from oomd.log import NullKmsg
from oomd.plugins import registry
from oomd.recorder import Recorder, trace_meta
from oomd.stats import Stats
from oomd.trace import TraceWriter

_FIELDS = (
    CgroupContext.current_usage,
    CgroupContext.memory_low,
    CgroupContext.memory_min,
    CgroupContext.memory_high,
    CgroupContext.memory_max,
    CgroupContext.swap_usage,
    CgroupContext.swap_max,
    CgroupContext.memory_stat,
    CgroupContext.mem_pressure,
    CgroupContext.io_pressure,
    CgroupContext.io_stat,
    CgroupContext.is_populated,
    CgroupContext.oom_group,
    CgroupContext.xattr_names,
)


def read_everything(cg: CgroupContext) -> None:
    for read in _FIELDS:
        read(cg)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="oomd record",
        description="Record, every interval, what CONFIG's plugins read into a trace file "
        "(SQLite; docs/trace-format.md). Nothing is killed.",
    )
    parser.add_argument("-C", "--config", required=True)
    parser.add_argument("-o", "--output", required=True, metavar="FILE")
    parser.add_argument("-i", "--interval", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("-f", "--cgroup-fs", default=None, help="cgroup2 mount")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS")
    parser.add_argument(
        "--cgroup",
        action="append",
        default=[],
        metavar="PATTERN",
        help="also record every usual file of the cgroups PATTERN matches (repeatable)",
    )
    args = parser.parse_args(list(argv))
    if args.interval <= 0:
        parser.error("--interval must be positive")
    try:
        cgroup_fs, _ = mount.resolve_cgroup_fs(args.cgroup_fs)
    except mount.CgroupFsError as e:
        print(f"oomd record: {e}")
        return 1
    try:
        registry.discover([])
        ir = load_config(args.config)
        with open(args.config, encoding="utf-8", errors="replace") as f:
            config_text = f.read()
        system = SystemContext()
        env = PluginEnv(
            cgroup_fs=cgroup_fs,
            system=system,
            kmsg=NullKmsg(),
            stats=Stats(),
            dry_run=True,
            controllers=mount.controllers(cgroup_fs),
            own_cgroup=own_cgroup(cgroup_fs),
        )
        compiled = compile_config(ir, env)
    except ConfigError as e:
        for problem in e.problems:
            print(problem)
        print(f"oomd record: {args.config}: the config does not compile")
        return 1
    except (OSError, registry.PluginLoadError) as e:
        print(f"oomd record: {e}")
        return 1
    engine = compiled.engine
    engine.prekill_hooks = []
    patterns = [pat for text in args.cgroup for pat in parse_pattern_list(cgroup_fs, text)]
    ctx = OomdContext(cgroup_fs, system)
    meta = trace_meta(
        ctx,
        interval=args.interval,
        dry_run=True,
        own_cgroup=env.own_cgroup,
        controllers=env.controllers,
        config_text=config_text,
        source="oomd record",
    )
    try:
        writer = TraceWriter(args.output, meta)
    except (OSError, Exception) as e:
        print(f"oomd record: cannot create {args.output}: {e}")
        return 1
    recorder = Recorder(ctx, writer)
    stop: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        stop.append(signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    start = time.monotonic()
    ticks = 0
    log.raw(f"oomd record: recording {args.config} into {args.output} every {args.interval} s")
    while not stop:
        try:
            engine.tick(ctx)
            for cg in ctx.resolve(patterns):
                read_everything(cg)
        except Exception as e:
            log.raw(f"Error during tick: {type(e).__name__}: {e}")
        recorder.end_tick()
        if recorder.failed:
            break
        ticks += 1
        now = time.monotonic()
        if args.duration is not None and now - start + 1e-9 >= args.duration:
            break
        next_tick = start + ticks * args.interval
        if next_tick > now:
            time.sleep(next_tick - now)
    recorder.stop()
    writer.close()
    size = os.path.getsize(args.output)
    log.raw(f"oomd record: {ticks} ticks, {size} bytes in {args.output}")
    return 1 if recorder.failed else 0
