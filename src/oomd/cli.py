"""Command line: upstream oomd's flags, forms, defaults and exit codes.

Parsing follows glibc ``getopt_long`` as upstream uses it (our own small
implementation: Python's ``getopt`` parses everything before acting): options and arguments in any
order, ``--opt=value`` or ``--opt value``, unambiguous long-option prefixes. ``-h``,
``-v`` and ``-l`` act where they appear. Where upstream aborts (exit 134) on bad input
we print a message and exit 1 (docs/compatibility.md).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence

from oomd import __version__, log
from oomd.cgroup import iocost
from oomd.cgroup.mount import DEFAULT_CGROUP_FS
from oomd.cnum import INT32_MAX, c_int_prefix
from oomd.options import (
    Options,
)

USAGE = """usage: oomd [OPTION]...

optional arguments:
  --help, -h                 Show this help message and exit
  --version, -v              Print version and exit
  --config, -C CONFIG        Config file (default: /etc/oomd.json)
  --interval, -i INTERVAL    Event loop polling interval (default: 5)
  --cgroup-fs, -f FS         Cgroup2 filesystem mount point (default: /sys/fs/cgroup)
  --check-config, -c CONFIG  Check config file (default: /etc/oomd.json)
  --list-plugins, -l         List all available plugins
  --drop-in-dir, -w DIR      Directory to watch for drop in configs
  --runtime-dir, -D PATH     Directory for runtime files (default: /run/oomd)
  --dump-stats, -d           Dump accumulated stats
  --reset-stats, -r          Reset stats collection
  --device DEVS              Comma separated <major>:<minor> pairs for IO cost calculation (default: none)
  --ssd-coeffs COEFFS        Comma separated values for SSD IO cost calculation (default: see doc)
  --hdd-coeffs COEFFS        Comma separated values for HDD IO cost calculation (default: see doc)
  --kmsg-override PATH       File to log kills to (default: /dev/kmsg)

extensions (not in upstream oomd):
  --dry-run                  Never kill: every kill plugin acts as with dry=true
  --plugin-dir DIR           Load third-party plugins from DIR/*.py (repeatable; DIR and
                             its files must be owned by root or oomd's user, and not
                             group/other-writable)
  --report-interval SECONDS  Log a status line (host pressure, each ruleset's detector
                             closest to firing) every SECONDS (default: 300; 0: never)
  --metrics-address HOST:PORT
                             Serve Prometheus metrics at http://HOST:PORT/metrics (needs
                             pip install 'oomd[prometheus]'; e.g. 127.0.0.1:9101)
  --log-format FORMAT        text (default: upstream's lines) or json (one object a line)
  --strict                   With -c: every warning fails the check (exit 1)
  --drop-in FILE             With -c: check the drop-in FILE against CONFIG (-w DIR
                             with -c checks every drop-in of DIR)
  --print-default-config     Print the built-in default policy (commented JSON) and exit
  --record-dir DIR           Flight recorder: keep the last --record-keep seconds of
                             what the plugins read in DIR, and one trace file per kill
                             (DIR/<kill uuid>.oomd-trace; docs/trace-format.md)
  --record-keep SECONDS      The flight recorder's window (default: 300)

Without --config, /etc/oomd.json is used if it exists, else a built-in default policy.
If /sys/fs/cgroup is not cgroup2 and --cgroup-fs is not given, the cgroup2 mount is
found in /proc/self/mountinfo.
--device ids are checked in /sys/dev/block/<id>/queue/rotational (1: HDD, 0: SSD).
--ssd-coeffs/--hdd-coeffs: up to six numbers, read iops, read bandwidth, write iops,
write bandwidth, trim iops, trim bandwidth (missing ones are 0). Defaults:
SSD 1.21e-2,6.25e-7,1.07e-3,2.61e-7,2.37e-2,9.10e-10; HDD 1.31e-3,1.13e-7,2.58e-1,5.04e-7,0,0.
"""

SHORT = "hvC:w:i:f:c:lD:dr"
LONG = [
    "help",
    "version",
    "config=",
    "drop-in-dir=",
    "interval=",
    "cgroup-fs=",
    "check-config=",
    "list-plugins",
    "runtime-dir=",
    "dump-stats",
    "reset-stats",
    "device=",
    "ssd-coeffs=",
    "hdd-coeffs=",
    "kmsg-override=",
    "dry-run",
    "plugin-dir=",
    "report-interval=",
    "metrics-address=",
    "log-format=",
    "strict",
    "drop-in=",
    "print-default-config",
    "record-dir=",
    "record-keep=",
]


class UsageExit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class GetoptError(Exception):
    """A command-line error, worded as glibc's getopt_long prints it."""


def _long_name(spec: str) -> str:
    return spec.rstrip("=")


def getopt_long(argv: Sequence[str]) -> Iterator[tuple[str, str]]:
    """GNU getopt_long semantics, one option at a time: options and arguments in any
    order, ``--`` ends options, ``--opt=value`` or ``--opt value``, unambiguous long
    prefixes, clustered short options. Yields (flag, value) as it goes, so a caller
    that exits on ``-h`` never sees errors further right; positional arguments are
    yielded last as ("", arg)."""
    positional: list[str] = []
    takes_arg = {f"--{_long_name(o)}": o.endswith("=") for o in LONG}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional.extend(argv[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            exact = f"--{name}"
            matches = (
                [exact] if exact in takes_arg else [o for o in takes_arg if o.startswith(exact)]
            )
            if not matches:
                raise GetoptError(f"oomd: unrecognized option '--{name}'")
            if len(matches) > 1:
                raise GetoptError(f"oomd: option '--{name}' is ambiguous")
            flag = matches[0]
            if takes_arg[flag]:
                if not eq:
                    if i >= len(argv):
                        raise GetoptError(f"oomd: option '{flag}' requires an argument")
                    value = argv[i]
                    i += 1
                yield flag, value
            elif eq:
                raise GetoptError(f"oomd: option '{flag}' doesn't allow an argument")
            else:
                yield flag, ""
        elif arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                ch = arg[j]
                j += 1
                pos = SHORT.find(ch)
                if ch == ":" or pos < 0:
                    raise GetoptError(f"oomd: invalid option -- '{ch}'")
                if SHORT[pos + 1 : pos + 2] == ":":
                    if j < len(arg):
                        value = arg[j:]
                    elif i < len(argv):
                        value = argv[i]
                        i += 1
                    else:
                        raise GetoptError(f"oomd: option requires an argument -- '{ch}'")
                    yield f"-{ch}", value
                    break
                yield f"-{ch}", ""
        else:
            positional.append(arg)
    for arg in positional:
        yield "", arg


def _parse_interval(value: str) -> int | None:
    """Upstream reads -i with stoi and insists the whole string was used."""
    parsed = c_int_prefix(value)
    if parsed is None or parsed[1] or not 1 <= parsed[0] <= INT32_MAX:
        return None
    return parsed[0]


def _stdout(text: str) -> None:
    """Normal output (usage, plugin list) goes to stdout, so ``oomd -l | grep`` works;
    errors stay on stderr (docs/compatibility.md)."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _plugin_dirs(argv: Sequence[str]) -> list[str]:
    """Every ``--plugin-dir`` of the command line, up to the first getopt error (``-l``
    acts where it appears but lists the plugins of every ``--plugin-dir``)."""
    dirs = []
    try:
        for flag, value in getopt_long(argv):
            if flag == "--plugin-dir":
                dirs.append(value)
    except GetoptError:
        pass
    return dirs


def _list_plugins(plugin_dirs: Sequence[str]) -> int:
    """Upstream's list (built-ins as " name"), third-party plugins with their origin."""
    from oomd.plugins import registry

    try:
        warnings = registry.discover(plugin_dirs)
    except registry.PluginLoadError as e:
        for problem in e.problems:
            log.raw(problem)
        return 1
    for warning in warnings:
        log.raw("Warning: " + warning)
    lines = ["List of plugins oomd was compiled with:"] + [
        f" {name}" if origin is None else f" {name} ({origin})"
        for name, origin in registry.listing()
    ]
    _stdout("\n".join(lines))
    return 0


def _print_default_config() -> int:
    from oomd.config.default_policy import default_policy_text
    from oomd.config.errors import ConfigError

    try:
        text = default_policy_text()
    except ConfigError as e:
        log.raw(str(e))
        return 1
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `oomd --print-default-config | head`
        pass
    return 0


def parse_args(argv: Sequence[str], dev_block_root: str = iocost.DEV_BLOCK_ROOT) -> Options:
    """Parse the command line; raises UsageExit for -h/-v/-l and errors. ``--device``
    ids are checked under ``dev_block_root`` (``/sys/dev/block``)."""
    opts = Options()
    rest: list[str] = []
    try:
        for flag, value in getopt_long(argv):
            if not flag:
                rest.append(value)
            elif flag in ("-h", "--help"):
                from oomd import commands

                _stdout(USAGE + commands.usage())
                raise UsageExit(0)
            elif flag in ("-v", "--version"):
                sys.stdout.write(f"v{__version__}\n")
                sys.stdout.flush()
                raise UsageExit(0)
            elif flag == "--print-default-config":
                raise UsageExit(_print_default_config())
            elif flag in ("-l", "--list-plugins"):
                raise UsageExit(_list_plugins(_plugin_dirs(argv)))
            elif flag in ("-C", "--config"):
                opts.config, opts.config_given = value, True
            elif flag in ("-c", "--check-config"):
                opts.config, opts.config_given, opts.check_config = value, True, True
            elif flag in ("-i", "--interval"):
                interval = _parse_interval(value)
                if interval is None:
                    log.raw(f"Interval not a >0 integer: {value}")
                    raise UsageExit(1)
                opts.interval = interval
            elif flag in ("-f", "--cgroup-fs"):
                opts.cgroup_fs = value
            elif flag in ("-D", "--runtime-dir"):
                opts.runtime_dir = value
            elif flag == "--kmsg-override":
                opts.kmsg = value
            elif flag == "--dry-run":
                opts.dry_run = True
            elif flag in ("-w", "--drop-in-dir"):
                opts.dropin_dir = value
            elif flag == "--plugin-dir":
                opts.plugin_dirs.append(value)
            elif flag == "--report-interval":
                parsed = c_int_prefix(value)
                if parsed is None or parsed[1] or not 0 <= parsed[0] <= INT32_MAX:
                    log.raw(f"--report-interval not a >=0 integer: {value}")
                    raise UsageExit(1)
                opts.report_interval = parsed[0]
            elif flag == "--metrics-address":
                from oomd import metrics

                try:
                    metrics.parse_address(value)
                except metrics.MetricsError as e:
                    log.raw(f"--metrics-address: {e}")
                    raise UsageExit(1) from None
                if not metrics.available():
                    log.raw(metrics.INSTALL_HINT)
                    raise UsageExit(1)
                opts.metrics_address = value
            elif flag == "--log-format":
                if value not in ("text", "json"):
                    log.raw(f"--log-format must be text or json, not {value!r}")
                    raise UsageExit(1)
                opts.log_format = value
            elif flag == "--strict":
                opts.strict = True
            elif flag == "--drop-in":
                opts.dropin_file = value
            elif flag == "--record-dir":
                opts.record_dir = value
            elif flag == "--record-keep":
                keep = _parse_interval(value)
                if keep is None:
                    log.raw(f"--record-keep not a >0 integer: {value}")
                    raise UsageExit(1)
                opts.record_keep = keep
            elif flag in ("-d", "--dump-stats"):
                opts.dump_stats = True
            elif flag in ("-r", "--reset-stats"):
                opts.reset_stats = True
            elif flag == "--device":
                try:
                    opts.io_devices = iocost.parse_devices(value, dev_block_root)
                except ValueError as e:
                    log.raw(f"Invalid devices: {e}")
                    raise UsageExit(1) from None
            elif flag in ("--ssd-coeffs", "--hdd-coeffs"):
                kind = "SSD" if flag == "--ssd-coeffs" else "HDD"
                try:
                    coeffs = iocost.parse_coeffs(value)
                except ValueError as e:
                    log.raw(f"Invalid {kind} coefficients: {e}")
                    raise UsageExit(1) from None
                if kind == "SSD":
                    opts.ssd_coeffs = coeffs
                else:
                    opts.hdd_coeffs = coeffs
    except GetoptError as e:
        log.raw(str(e))
        log.raw("Unknown option or missing argument")
        log.raw(USAGE)
        raise UsageExit(1) from None
    if (opts.strict or opts.dropin_file is not None) and not opts.check_config:
        log.raw("--strict and --drop-in work only with --check-config (-c)")
        raise UsageExit(1)
    if rest:
        log.raw("Non-option argument is not supported: " + "".join(f'"{a}" ' for a in rest))
        log.raw(USAGE)
        raise UsageExit(1)
    return opts


def stats_client(opts: Options) -> int:
    """``-d`` (dump) and/or ``-r`` (reset) against a running daemon, as upstream: dump
    first; a failed dump exits 1 before any reset."""
    from oomd import stats

    if opts.dump_stats:
        try:
            text = stats.dump_stats(opts.stats_socket)
        except stats.StatsClientError as e:
            log.raw(str(e))
            log.raw("Failed to retrieve stats")
            return 1
        sys.stdout.write(text)
        sys.stdout.flush()
    if opts.reset_stats:
        code = stats.reset_stats(opts.stats_socket)
        if code != 0:
            log.raw(f"Reset stats error: received error code= {code}")
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args and not args[0].startswith("-"):
        from oomd import commands

        subcommand = commands.find(args[0])
        if subcommand is not None:
            return subcommand(args[1:])
    try:
        opts = parse_args(args)
    except UsageExit as e:
        return e.code
    if opts.dump_stats or opts.reset_stats:
        return stats_client(opts)
    from oomd import daemon

    log.set_format(opts.log_format)
    log.use_journal(log.journal_stream())
    if opts.check_config:
        return daemon.check_config(opts)
    return daemon.run(opts)


__all__ = ["DEFAULT_CGROUP_FS", "Options", "main", "parse_args"]
