"""The daemon: start-up checks, the runtime lock, and the tick loop.

Ticks run on the monotonic clock at fixed times (start + k * interval, missed slots
skipped) so the period does not drift by the processing time as upstream's does; the
first tick runs at once instead of one interval after start; a PSI trigger on a
watched pressure file runs an early tick (oomd.scheduler, oomd.cgroup.triggers). SIGTERM and SIGINT are
handled between ticks: log, release the lock, then die by the same signal (as upstream
HEAD, so the exit status is 128 + signal).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import sys
import time
from collections.abc import Callable

from oomd import log, observe
from oomd.cgroup import fs, mount
from oomd.cgroup.context import ContextParams, OomdContext
from oomd.cgroup.system import SystemContext
from oomd.cgroup.triggers import PressureTriggers, raise_fd_limit
from oomd.config import armed
from oomd.config.compiler import Compiled, compile_config, compile_dropin
from oomd.config.default_policy import default_policy, default_policy_text
from oomd.config.errors import ConfigError
from oomd.config.host_policy import HostFacts, adapt_policy, to_json
from oomd.config.ir import ConfigIR
from oomd.config.parser import load_config
from oomd.dropin import DropInService, dropin_files, read_dropin
from oomd.engine.plugin import PluginEnv
from oomd.host import Host
from oomd.libc import libc
from oomd.log import Kmsg, NullKmsg
from oomd.notify import Notifier
from oomd.options import Options
from oomd.plugins import registry
from oomd.scheduler import run_ticks
from oomd.stats import CORE_KEYS, KILLS, Stats, StatsServer
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from oomd.recorder import FlightRecorder

EXIT_CANT_RECOVER = 3
LOCK_FILE = "oomd.lock"

_MCL_CURRENT, _MCL_FUTURE, _MCL_ONFAULT = 1, 2, 4


def own_cgroup(cgroup_fs: str, proc_root: str = "/proc") -> str | None:
    """Absolute path of this process's cgroup2 cgroup under the mount that holds
    ``cgroup_fs``, from ``/proc/self/cgroup``."""
    data = fs.read_bytes(f"{proc_root}/self/cgroup")
    if data is None:
        return None
    # Decoded like every path the daemon lists (surrogateescape), so a name that is
    # not UTF-8 still compares equal to the victim paths it must protect.
    lines = os.fsdecode(data).splitlines()
    relative = next((line[3:] for line in lines if line.startswith("0::")), None)
    if relative is None:
        return None
    for mount_point in mount.cgroup2_mounts(f"{proc_root}/self/mountinfo"):
        if mount.is_under(cgroup_fs, mount_point):
            base = mount_point.rstrip("/")
            return base + relative if relative != "/" else (base or "/")
    return None


def _load_ir(opts: Options) -> tuple[ConfigIR, bool]:
    """The config to run and whether it is the built-in default policy."""
    if not opts.config_given and not os.path.exists(opts.config):
        return default_policy(), True
    return load_config(opts.config), False


def _env(
    cgroup_fs: str, kmsg: Kmsg, dry_run: bool, stats: Stats | None = None, interval: float = 5
) -> PluginEnv:
    return PluginEnv(
        cgroup_fs=cgroup_fs,
        system=SystemContext(),
        kmsg=kmsg,
        stats=stats if stats is not None else Stats(),
        dry_run=dry_run,
        controllers=mount.controllers(cgroup_fs),
        own_cgroup=own_cgroup(cgroup_fs),
        host=Host(may_panic=True),
        # docs/writing_a_plugin.md, "Isolation".
        slow_run_threshold=min(1.0, interval / 2),
        plugin_timeout=max(10.0, float(interval)),
    )


def _discover(opts: Options, out: Callable[[str], None]) -> bool:
    """Register the third-party plugins (entry points, ``--plugin-dir``); False, with
    every problem written to ``out``, if they cannot be used."""
    try:
        warnings = registry.discover(opts.plugin_dirs)
    except registry.PluginLoadError as e:
        for problem in e.problems:
            out(problem)
        return False
    for warning in warnings:
        out("Warning: " + warning)
    return True


def _named(name: str) -> str:
    origin = registry.origin(name)
    return name if origin is None else f"{name} ({origin})"


def _out(line: str) -> None:
    """``-c``'s normal output: stdout (errors and warnings go to stderr)."""
    sys.stdout.write(line + "\n")


def _check_dropins(opts: Options, ir: ConfigIR, compiled: Compiled, env: PluginEnv) -> list[str]:
    """Apply every drop-in ``-c`` was asked to check to the compiled engine, as the
    daemon would; returns the problems (each drop-in that would be refused, and why)."""
    problems: list[str] = []
    paths: list[str] = []
    if opts.dropin_dir is not None:
        try:
            paths += dropin_files(opts.dropin_dir)
        except OSError as e:
            problems.append(f"Cannot read drop-in directory {opts.dropin_dir}: {e.strerror}")
    if opts.dropin_file is not None:
        paths.append(opts.dropin_file)
    for path in paths:
        try:
            unit = compile_dropin(ir, read_dropin(path), env)
        except ConfigError as e:
            problems += e.problems
            problems.append(f"drop-in {path} would be refused")
            continue
        compiled.warnings += unit.warnings
        tag = os.path.basename(path)
        if not compiled.engine.add_dropin(tag, unit):
            problems.append(f"drop-in {path} would be refused")
            continue
        names = ", ".join(f'"{r.name}"' for r in unit.rulesets) or "no ruleset"
        _out(f"drop-in {path}: applies to {names}")
    return problems


def check_config(opts: Options) -> int:
    """``-c FILE``: parse and compile (and apply the drop-ins of ``-w DIR`` or
    ``--drop-in FILE``), print every plugin with its effective args and whether each
    ruleset is armed on this host; exit 1 on any error (any warning with
    ``--strict``), else 0. Normal output on stdout, errors and warnings on stderr."""
    try:
        cgroup_fs, _ = mount.resolve_cgroup_fs(opts.cgroup_fs)
    except mount.CgroupFsError:
        cgroup_fs = opts.cgroup_fs or mount.DEFAULT_CGROUP_FS
    try:
        if not _discover(opts, log.raw):
            log.raw("Config is not valid")
            return 1
        env = _env(cgroup_fs, NullKmsg(), opts.dry_run)
        try:
            ir = load_config(opts.config)
        except ConfigError as e:
            for problem in e.problems:
                log.raw(problem)
            log.raw("Config is not valid")
            return 1
        try:
            compiled = compile_config(ir, env)
        except ConfigError as e:
            for warning in ir.warnings:
                log.raw("Warning: " + warning)
            for problem in e.problems:
                log.raw(problem)
            log.raw("Config is not valid")
            return 1
        problems = _check_dropins(opts, ir, compiled, env)
        for line in armed.describe(compiled.engine, _named):
            _out(line)
        statuses = armed.analyse(compiled.engine)
        for status in statuses:
            _out(status.line)
        warnings = compiled.warnings + [w for s in statuses for w in s.warnings]
        for warning in warnings:
            log.raw("Warning: " + warning)
        for problem in problems:
            log.raw(problem)
        error = armed.problem(statuses, len(compiled.engine.rulesets))
        if error is not None:
            log.raw(f"Error: {error}")
        if problems or error is not None:
            log.raw("Config is not valid")
            return 1
        if opts.strict and warnings:
            log.raw(f"Config is not valid (--strict: {len(warnings)} warning(s))")
            return 1
        _out("Config is valid")
        return 0
    finally:
        sys.stdout.flush()


def _try_mlockall() -> None:
    try:
        if libc().mlockall(_MCL_CURRENT | _MCL_FUTURE | _MCL_ONFAULT) != 0:
            err = ctypes.get_errno()
            log.always(
                f"Warning: mlockall failed ({os.strerror(err)}); oomd's memory may be swapped out"
            )
    except (OSError, AttributeError) as e:
        log.always(f"Warning: mlockall unavailable ({e})")


def _try_oom_score_adj(path: str = "/proc/self/oom_score_adj") -> None:
    try:
        with open(path, "w") as f:
            f.write("-1000")
    except OSError as e:
        log.always(
            f"Warning: cannot set oom_score_adj to -1000 ({e.strerror}); the kernel OOM killer may pick oomd"
        )


class LockError(Exception):
    pass


def acquire_lock(runtime_dir: str) -> int:
    """Create the runtime dir and hold ``oomd.lock`` exclusively; returns the fd."""
    path = os.path.join(runtime_dir, LOCK_FILE)
    try:
        os.makedirs(runtime_dir, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        raise LockError(f'Failed to open lock file="{path}": {e.strerror}') from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        who = (
            f" (held by pid {holder}: is another oomd running?)"
            if holder
            else " (is another oomd running?)"
        )
        raise LockError(
            f'Failed to acquire exclusive runtime lock="{path}": {e.strerror}{who}'
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def psi_available(proc_root: str = "/proc") -> bool:
    for name in ("pressure/memory", "mempressure"):
        try:
            with open(f"{proc_root}/{name}", encoding="utf-8") as f:
                if f.readline():
                    return True
        except OSError:
            continue
    return False


def _flight_recorder(
    opts: Options, ctx: OomdContext, env: PluginEnv, config: str, fitted: ConfigIR | None = None
) -> FlightRecorder | None:
    """``--record-dir``: the flight recorder, tapping ``ctx`` and the kill log; None
    when not asked for, or when it cannot start (logged: the daemon runs on)."""
    if opts.record_dir is None:
        return None
    import json  # only here: json is 0.3 MiB a plain run does not need

    from oomd.recorder import FlightRecorder, trace_meta

    try:
        text = default_policy_text()
        if fitted is not None:  # the built-in policy as fitted to this host
            text = json.dumps(to_json(fitted), indent=2) + "\n"
        elif os.path.exists(config):
            with open(config, encoding="utf-8", errors="replace") as f:
                text = f.read()
        meta = trace_meta(
            ctx,
            interval=opts.interval,
            dry_run=opts.dry_run,
            own_cgroup=env.own_cgroup,
            controllers=env.controllers,
            config_text=text,
            source="flight recorder",
        )
        recorder = FlightRecorder(opts.record_dir, opts.record_keep, ctx, meta)
    except Exception as e:
        log.always(f"Flight recorder not started ({opts.record_dir}): {type(e).__name__}: {e}")
        return None
    log.always(f"Flight recorder: the last {opts.record_keep} s in {opts.record_dir}")
    return recorder


class _Signals:
    """SIGTERM/SIGINT set a flag and wake the loop through a pipe."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.received = 0
        #: SIGHUP since the last tick: re-read the config and drop-ins (docs/compatibility.md).
        self.hangup = False

    @classmethod
    def install(cls) -> _Signals:
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self = cls(r, w)

        def handler(signum: int, _frame: object) -> None:
            self.received = signum

        def on_hangup(_signum: int, _frame: object) -> None:
            self.hangup = True

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGHUP, on_hangup)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        return self


def _status(engine_rulesets: int, kills: int, last_kill: str | None, dry_run: bool) -> str:
    """The one-line ``STATUS=`` systemd shows for the service."""
    armed = f"{engine_rulesets} ruleset{'s' if engine_rulesets != 1 else ''} armed"
    last = (
        f"{kills} kill{'s' if kills != 1 else ''}, last at {last_kill}"
        if last_kill
        else "no kill yet"
    )
    return f"{armed}, {last}" + (" [--dry-run]" if dry_run else "")


def run(opts: Options) -> int:
    """Daemon mode. Returns an exit status (or dies by SIGTERM/SIGINT)."""
    notifier = Notifier.from_env()  # first: the commands we run must not inherit it
    try:
        kmsg = Kmsg(opts.kmsg)
    except OSError as e:
        log.raw(f"open: {e.strerror}")
        log.raw(f"Unable to open outfile {opts.kmsg}, not logging")
        log.raw("Logging failed to initialize. Try running with sudo")
        return 1
    if not psi_available():
        log.raw("PSI not detected. Is your system running a new enough kernel?")
        log.raw("System requirements not met")
        return EXIT_CANT_RECOVER
    try:
        cgroup_fs, fs_note = mount.resolve_cgroup_fs(opts.cgroup_fs)
    except mount.CgroupFsError as e:
        log.raw(str(e))
        return EXIT_CANT_RECOVER
    try:
        ir, is_default = _load_ir(opts)
    except ConfigError as e:
        for problem in e.problems:
            log.raw(problem)
        return EXIT_CANT_RECOVER
    banner = f"oomd running with conf_file={ir.source if is_default else opts.config} interval={opts.interval}"
    if is_default:
        banner += f" (no config at {opts.config}: running the built-in default policy)"
    if opts.dry_run:
        banner += " [--dry-run: no process will be killed]"
    log.always(banner)
    if fs_note:
        log.always(fs_note)
    if is_default:
        ir, notes = adapt_policy(ir, HostFacts(cgroup_fs, mount.controllers(cgroup_fs)))
        for note in notes:
            log.always(f"Default policy on this host: {note}")
    for line in ir.dump():
        log.info(line)
    if not _discover(opts, log.always):
        log.always("Third-party plugins failed to load")
        return EXIT_CANT_RECOVER
    stats = Stats()
    for key in CORE_KEYS:
        stats.set(key, 0)
    env = _env(cgroup_fs, kmsg, opts.dry_run, stats, opts.interval)
    try:
        compiled = compile_config(ir, env)
    except ConfigError as e:
        for problem in e.problems:
            log.always(problem)
        log.always("Config failed to compile")
        return EXIT_CANT_RECOVER
    for warning in compiled.warnings:
        log.always("Warning: " + warning)
    for name in sorted({p.name for _, p in compiled.engine.plugins() if p.origin is not None}):
        log.always(f"Using third-party plugin {_named(name)}")
    try:
        lock_fd = acquire_lock(opts.runtime_dir)
    except LockError as e:
        log.always(str(e))
        return 1
    stats_server = StatsServer(stats, opts.stats_socket)
    try:
        stats_server.start()
    except OSError as e:
        log.always(f"Error binding stats collection socket {opts.stats_socket}: {e.strerror}")
        log.always("Stats module failed to initialize")
        os.close(lock_fd)
        return 1
    _try_mlockall()
    _try_oom_score_adj()
    signals = _Signals.install()
    params = ContextParams(
        io_devices=dict(opts.io_devices), ssd_coeffs=opts.ssd_coeffs, hdd_coeffs=opts.hdd_coeffs
    )
    ctx = OomdContext(cgroup_fs, env.system, params=params)
    engine = compiled.engine
    dropins = None
    if opts.dropin_dir is not None:
        dropins = DropInService(
            opts.dropin_dir, engine, lambda unit_ir: compile_dropin(ir, unit_ir, env)
        )
    # PSI triggers on the pressure files the detectors watch wake the loop for an
    # early tick (oomd.cgroup.triggers, oomd.scheduler).
    raise_fd_limit()
    triggers = ctx.triggers = PressureTriggers(log.always)
    # oomd status, --report-interval, --metrics-address, post-kill hooks (oomd.observe).
    observer = observe.Observer(engine, ctx, stats, opts.interval, opts.report_interval)
    try:
        side = observe.start_services(opts, observer)
    except observe.ServiceError as e:
        log.always(str(e))
        stats_server.close()
        os.close(lock_fd)
        return 1
    # Armed or not, per ruleset, said at start and whenever it changes (drop-ins, a
    # slice that appears or goes); an error, repeated at a bounded rate, while nothing
    # can act (oomd.config.armed).
    monitor = armed.Monitor()
    monitor.check(engine, time.monotonic())
    recorder = _flight_recorder(
        opts, ctx, env, ir.source if is_default else opts.config, ir if is_default else None
    )
    log.always("Running oomd")
    # systemd (Type=notify): READY after the first tick, then a watchdog ping and a
    # status line after every tick; oomd.notify.
    if notifier.watchdog_usec is not None and opts.interval * 2e6 > notifier.watchdog_usec:
        log.always(
            f"Warning: WatchdogSec={notifier.watchdog_usec / 1e6:g}s is shorter than two "
            f"intervals (-i {opts.interval}): systemd will restart oomd between ticks"
        )
    seen = {"ticks": 0, "kills": 0, "counter": 0}
    last_kill: list[str] = []

    def notify() -> None:
        counter = stats.get(KILLS) or 0
        if counter > seen["counter"]:
            seen["kills"] += counter - seen["counter"]
            last_kill[:] = [time.strftime("%H:%M:%S")]
        seen["counter"] = counter  # -r zeroes the counter
        status = _status(
            len(engine.rulesets), seen["kills"], last_kill[0] if last_kill else None, opts.dry_run
        )
        if seen["ticks"] == 0:
            notifier.send(ready="1", watchdog="1", status=status)
        else:
            notifier.send(watchdog="1", status=status)
        seen["ticks"] += 1

    def reload() -> None:
        """SIGHUP: the config (and the drop-ins, re-read against it) replace the
        running rules only if all of them load and compile; else the rules stay."""
        nonlocal ir, engine, dropins
        signals.hangup = False
        log.always(f"Received SIGHUP: reloading conf_file={opts.config}")
        try:
            new_ir, new_is_default = _load_ir(opts)
            if new_is_default:
                new_ir, _ = adapt_policy(new_ir, HostFacts(cgroup_fs, mount.controllers(cgroup_fs)))
            new = compile_config(new_ir, env)
        except ConfigError as e:
            for problem in e.problems:
                log.always(problem)
            log.always("Config failed to reload; keeping the running rules")
            return
        except Exception as e:  # the daemon must never die of a reload
            log.always(
                f"Config failed to reload ({type(e).__name__}: {e}); keeping the running rules"
            )
            return
        for warning in new.warnings:
            log.always("Warning: " + warning)
        ir, engine = new_ir, new.engine
        if dropins is not None:
            dropins.close()
            dropins = DropInService(
                dropins.directory, engine, lambda unit_ir: compile_dropin(ir, unit_ir, env)
            )
        observer.replace_engine(engine)
        log.always(f"Reloaded conf_file={opts.config}")
        for line in armed.describe(engine, _named):
            log.info(line)

    def engine_tick() -> None:
        if signals.hangup:
            reload()
        try:
            if dropins is not None:
                dropins.poll()
            monitor.check(engine, time.monotonic())
            engine.tick(ctx)
        except Exception as e:
            log.always(f"Error during tick: {type(e).__name__}: {e}")
            notify()
            return  # keep the triggers: the detectors that did not run still watch
        finally:
            if recorder is not None:
                recorder.end_tick()
        triggers.end_tick()
        notify()

    def tick() -> None:
        observer.run_tick(engine_tick)

    run_ticks(
        tick,
        float(opts.interval),
        signals.read_fd,
        triggers,
        lambda: bool(signals.received),
        tick_kind=observer.tick_kind,
    )
    signum = signals.received
    log.raw(f"Received signal {signum}. Exiting!")
    notifier.send(stopping="1", status=f"Received signal {signum}. Exiting!")
    notifier.close()
    if recorder is not None:
        recorder.close()
    side.close()
    stats_server.close()
    os.close(lock_fd)
    kmsg.close()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum


__all__ = ["EXIT_CANT_RECOVER", "acquire_lock", "check_config", "run"]

#: For ``oomd explain`` (oomd.commands.explain): the daemon's own config loading,
#: plugin discovery and plugin environment.
load_ir = _load_ir
discover_plugins = _discover
plugin_env = _env
