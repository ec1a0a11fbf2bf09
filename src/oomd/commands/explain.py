"""``oomd explain [-C CONFIG] [-f CGROUP_FS] [--json] [--watch [-i SECONDS]]``: the
status view computed here, against the live host, with no daemon: for trying a
config before deploying it.

The config is compiled as the daemon compiles it (every kill plugin dry); each
evaluation is a tick without actions: the context refreshed, every plugin's prerun,
every detector run (so durations count across ``--watch`` refreshes, as in the
daemon), then the plugins' read-only ``explain``. Nothing is killed, no xattr set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from oomd import log
from oomd.options import DEFAULT_CONFIG, Options


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="oomd explain",
        description="Compute, here and now, what a config would watch and whom it would "
        "kill on this host (no daemon needed; nothing is killed).",
    )
    parser.add_argument(
        "-C",
        "--config",
        default=None,
        help=f"config (default: {DEFAULT_CONFIG}, else the built-in policy)",
    )
    parser.add_argument("-f", "--cgroup-fs", default=None, help="cgroup2 mount point")
    parser.add_argument("--json", action="store_true", help="one JSON document (docs/status.md)")
    parser.add_argument("--top", type=int, default=3, help="candidates per kill action (3)")
    parser.add_argument("--watch", action="store_true", help="refresh every interval")
    parser.add_argument("-i", "--interval", type=float, default=5.0, help="--watch period (5)")
    parser.add_argument("--plugin-dir", action="append", default=[], help="third-party plugins")
    args = parser.parse_args(list(argv))
    if args.interval <= 0:
        parser.error("--interval must be > 0")

    from oomd import daemon
    from oomd.cgroup import mount
    from oomd.cgroup.context import OomdContext
    from oomd.commands.status import print_doc
    from oomd.config.compiler import compile_config
    from oomd.config.errors import ConfigError
    from oomd.engine.status import evaluate
    from oomd.log import NullKmsg

    opts = Options(plugin_dirs=args.plugin_dir, dry_run=True)
    if args.config is not None:
        opts.config, opts.config_given = args.config, True
    try:
        cgroup_fs, _ = mount.resolve_cgroup_fs(args.cgroup_fs)
    except mount.CgroupFsError as e:
        if args.cgroup_fs is None or not os.path.isdir(args.cgroup_fs):
            log.raw(str(e))
            return 1
        # Unlike the daemon, explain reads any tree it is pointed at (a copy, a test
        # tree): it only reads.
        log.raw(f"Warning: {e}; reading it anyway")
        cgroup_fs = args.cgroup_fs
    if not daemon.discover_plugins(opts, log.raw):
        return 1
    try:
        ir, _ = daemon.load_ir(opts)
        compiled = compile_config(ir, daemon.plugin_env(cgroup_fs, NullKmsg(), True))
    except ConfigError as e:
        for problem in e.problems:
            log.raw(problem)
        return 1
    for warning in compiled.warnings:
        log.raw("Warning: " + warning)
    engine = compiled.engine
    ctx = OomdContext(cgroup_fs)
    while True:
        ctx.refresh()
        previous = log.set_silenced(True)
        try:
            engine.prerun(ctx)
            for ruleset in engine.rulesets:
                for group in ruleset.detector_groups:
                    group.check(ctx, True, ruleset.name)
        finally:
            log.set_silenced(previous)
        doc = evaluate(engine, ctx, max(0, args.top))
        if args.watch and not args.json:
            sys.stdout.write("\x1b[H\x1b[2J")
        print_doc(doc, args.json)
        if not args.watch:
            return 0
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0
