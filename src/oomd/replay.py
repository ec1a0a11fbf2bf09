"""Replay a trace (oomd.trace) through the real engine and plugins.

Each recorded tick is materialised as files in a scratch cgroup tree and a scratch
``/proc`` (tmpfs when ``/dev/shm`` is there): the cgroups the tick looked at, with
the content every reader saw, and the recorded xattr names. Then the engine ticks on
that tree with a simulated clock that gives back the recorded clock readings, so the
unmodified readers and plugins decide as they did (or would have, for another
config). Kills are dry runs (no signal, no xattr: ``--dry-run`` semantics), so the
kill line comes from the plugins' own code path, marked ``killer:(dry)``; prekill
hooks are not run (a replay must not run commands).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from oomd import log
from oomd.cgroup.context import OomdContext
from oomd.cgroup.system import SystemContext
from oomd.config.compiler import compile_config
from oomd.config.errors import ConfigError
from oomd.config.parser import load_config, parse_config
from oomd.engine.plugin import PluginEnv
from oomd.host import Host
from oomd.kill import KillReport
from oomd.log import NullKmsg
from oomd.plugins import registry
from oomd.stats import Stats
from oomd.trace import XATTRS, TickData, Trace

_LOG_PREFIX = re.compile(r"^\d{4} \d\d:\d\d:\d\d \[[^\]]*\] ")
_MANAGED_XATTRS = ("trusted.", "user.")


@dataclass
class Kill:
    """One kill of a replay: when, the kill line, and the ranking logged before it."""

    tick: int
    time: float
    wall: float
    line: str
    victim: str
    ranking: list[str] = field(default_factory=list)


@dataclass
class ReplayResult:
    config: str
    kills: list[Kill]
    ticks: int
    errors: list[str] = field(default_factory=list)
    #: per tick, per detector (ruleset/group/plugin index): did it fire
    detectors: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)
    #: per detector with a numeric ``threshold``: (threshold, its cgroup patterns)
    thresholds: dict[str, tuple[float, list[str]]] = field(default_factory=dict)


class ReplayClock:
    """Gives back the tick's recorded clock readings in order, then its last one."""

    def __init__(self) -> None:
        self.readings: list[float] = [0.0]
        self.index = 0

    def start(self, data: TickData) -> None:
        self.readings = [data.time, *data.clock]
        self.index = 0

    def __call__(self) -> float:
        readings = self.readings
        value = readings[min(self.index, len(readings) - 1)]
        self.index += 1
        return value


class Materialiser:
    """Writes a trace's ticks into a scratch cgroup tree and proc directory."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cgroup_root = os.path.join(base, "cgroup")
        self.proc_root = os.path.join(base, "proc")
        os.makedirs(self.cgroup_root)
        os.makedirs(self.proc_root)
        self.paths: dict[int, str] = {}
        self.warned: set[str] = set()
        #: file key -> current content (for observers such as the report)
        self.state: dict[tuple[int | None, str], bytes | None] = {}

    def _dir(self, rel: str) -> str:
        return os.path.join(self.cgroup_root, rel) if rel else self.cgroup_root

    def apply(self, data: TickData) -> None:
        for gid, gone in data.died:
            self.paths.pop(gid, None)
            directory = self._dir(gone)
            if gone and os.path.isdir(directory):
                for entry in os.scandir(directory):
                    if not entry.is_dir(follow_symlinks=False):
                        os.unlink(entry.path)
                with contextlib.suppress(OSError):
                    os.rmdir(directory)  # kept while a child lives on
            for key in [k for k in self.state if k[0] == gid]:
                del self.state[key]
        for gid, new in data.born:
            self.paths[gid] = new
            directory = self._dir(new)
            if new and os.path.isdir(directory):
                # Re-created under the same name: a new directory (a new inode) unless
                # a child keeps the old one.
                with contextlib.suppress(OSError):
                    for entry in os.scandir(directory):
                        if not entry.is_dir(follow_symlinks=False):
                            os.unlink(entry.path)
                    os.rmdir(directory)
            os.makedirs(directory, exist_ok=True)
        for (cid, name), content in data.changed.items():
            self.state[(cid, name)] = content
            if cid is None:
                self._write(os.path.join(self.proc_root, name), content)
                continue
            rel = self.paths.get(cid)
            if rel is None:
                continue
            if name == XATTRS:
                self._xattrs(self._dir(rel), content)
            else:
                self._write(os.path.join(self._dir(rel), name), content)

    def _write(self, path: str, content: bytes | None) -> None:
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        try:
            with open(path, "wb") as f:
                f.write(content)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)

    def _xattrs(self, directory: str, content: bytes | None) -> None:
        wanted = set() if content is None else {os.fsdecode(n) for n in content.split(b"\n") if n}
        try:
            present = set(os.listxattr(directory))
        except OSError:
            return
        for name in present - wanted:
            if name.startswith(_MANAGED_XATTRS):
                with contextlib.suppress(OSError):
                    os.removexattr(directory, name)
        for name in sorted(wanted - present):
            if not name.startswith(_MANAGED_XATTRS):
                continue
            try:
                os.setxattr(directory, name, b"")
            except OSError as e:
                if name not in self.warned:
                    self.warned.add(name)
                    log.raw(
                        f"replay: cannot set xattr {name} in the scratch tree "
                        f"({errno.errorcode.get(e.errno or 0, e.errno)}): plugins will not see it"
                    )


class _NeverKills:
    """A replay's killer: kills are simulated (dry run), and should a plugin reach the
    killer anyway, nothing is signalled."""

    def kill(self, cgroup_dir: str, *, freeze: bool = False, reap: bool = True) -> KillReport:
        return KillReport(error="a replay never kills")


def _replay_host(base: str, proc_root: str) -> Host:
    """A host with nothing behind it: the recorded /proc, and a /run, system bus and
    systemctl that do not exist, so no plugin can reach the machine from a replay."""
    return Host(
        killer=_NeverKills(),
        proc_root=proc_root,
        run_root=os.path.join(base, "run"),
        system_bus_address=f"unix:path={base}/no-system-bus",
        systemctl=os.path.join(base, "no-systemctl"),
    )


def scratch_dir() -> str:
    parent = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    return tempfile.mkdtemp(prefix="oomd-replay-", dir=parent)


class _LogCapture:
    """OLOG lines of the replay, in a scratch file, read back tick by tick."""

    def __init__(self, base: str) -> None:
        self.path = os.path.join(base, "olog")
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self.offset = 0

    def take(self) -> list[str]:
        size = os.fstat(self.fd).st_size
        data = os.pread(self.fd, size - self.offset, self.offset)
        self.offset = size
        return [_LOG_PREFIX.sub("", line) for line in data.decode("utf-8", "replace").splitlines()]


def _ranking(lines: list[str]) -> list[str]:
    """The lines that explain a kill: the "Dumping OomdContext" blocks, the
    "Picked" reasons and the dry-run note."""
    keep = []
    dumping = False
    for line in lines:
        if line.startswith("Dumping OomdContext"):
            dumping = True
            keep.append(line)
        elif line.startswith(("Picked ", "OOMD: In dry-run")):
            dumping = False
            keep.append(line)
        elif dumping and line.startswith(("name=", "  ", "\t", "...")):
            keep.append(line)
        else:
            dumping = False
    return keep


def run_replay(
    trace: Trace,
    config_path: str,
    observe: Callable[[TickData, Materialiser], None] | None = None,
    config_text: str | None = None,
) -> ReplayResult:
    """Replay ``trace`` with the config at ``config_path`` (or ``config_text``);
    raises ConfigError for a config that does not compile."""
    ir = (
        parse_config(config_text, config_path)
        if config_text is not None
        else load_config(config_path)
    )
    registry.discover([])
    base = scratch_dir()
    saved_fd = None
    try:
        mat = Materialiser(base)
        capture = _LogCapture(base)
        data_iter = trace.replay()
        first = next(data_iter)
        mat.apply(first)
        clock = ReplayClock()
        clock.start(first)
        meta = trace.meta
        try:
            page_size = int(meta.get("page_size", "4096"))
        except ValueError:
            page_size = 4096
        system = SystemContext(mat.proc_root, clock=clock, page_size=page_size)
        own = meta.get("own_cgroup", "")
        controllers = meta.get("controllers")
        kmsg = NullKmsg()
        env = PluginEnv(
            cgroup_fs=mat.cgroup_root,
            system=system,
            kmsg=kmsg,
            stats=Stats(),
            dry_run=True,
            controllers=frozenset(controllers.split()) if controllers else None,
            own_cgroup=os.path.join(mat.cgroup_root, own) if own else None,
            host=_replay_host(base, mat.proc_root),
            slow_run_threshold=3600.0,
            plugin_timeout=3600.0,
        )
        saved_fd = os.dup(2)
        log.set_output_fd(capture.fd)
        try:
            compiled = compile_config(ir, env)
        finally:
            log.set_output_fd(saved_fd)
        engine = compiled.engine
        engine.prekill_hooks = []
        result = ReplayResult(config_path, [], 0)
        fired: dict[str, bool] = {}
        for ruleset in engine.rulesets:
            for group in ruleset.detector_groups:
                for index, detector in enumerate(group.detectors):
                    name = f"{ruleset.name}/{group.name}/{index}:{detector.name}"
                    result.detectors[name] = []
                    threshold = getattr(detector, "threshold", None)
                    if isinstance(threshold, (int, float)):
                        patterns = getattr(detector, "cgroup", ()) or ()
                        result.thresholds[name] = (
                            float(threshold),
                            [getattr(p, "text", str(p)) for p in patterns],
                        )
                    _watch(detector, name, fired)
        ctx = OomdContext(mat.cgroup_root, system, clock=clock)
        real_fs = meta.get("cgroup_fs", "/sys/fs/cgroup")
        tick = first
        while True:
            clock.start(tick)
            fired.clear()
            kills_before = len(kmsg.lines)
            log.set_output_fd(capture.fd)
            try:
                engine.tick(ctx)
            except Exception as e:  # as the daemon: log and go on
                result.errors.append(f"tick {tick.tick}: {type(e).__name__}: {e}")
            finally:
                log.set_output_fd(saved_fd)
            lines = capture.take()
            for name, series in result.detectors.items():
                series.append((tick.time, fired.get(name, False)))
            for line in kmsg.lines[kills_before:]:
                if not line.startswith("oomd kill: "):
                    continue
                match = re.match(r"^oomd kill: \S+ \S+ \S+ (.*) -?\d+ ruleset:\[", line)
                result.kills.append(
                    Kill(
                        tick.tick,
                        tick.time,
                        tick.wall,
                        line,
                        match.group(1) if match else "",
                        [r.replace(mat.cgroup_root, real_fs) for r in _ranking(lines)],
                    )
                )
            result.ticks += 1
            if observe is not None:
                observe(tick, mat)
            nxt = next(data_iter, None)
            if nxt is None:
                break
            tick = nxt
            mat.apply(tick)
        ctx.close()
        return result
    finally:
        if saved_fd is not None:
            log.set_output_fd(2)
            os.close(saved_fd)
        shutil.rmtree(base, ignore_errors=True)


def _watch(detector: object, name: str, fired: dict[str, bool]) -> None:
    """Note, per tick, whether a detector fired (an instance wrapper of its run)."""
    run = getattr(detector, "run", None)
    if run is None:
        return

    def watched(ctx: OomdContext) -> object:
        ret = run(ctx)
        fired[name] = getattr(ret, "name", "") == "CONTINUE"
        return ret

    try:
        detector.run = watched  # type: ignore[attr-defined]
    except AttributeError:
        pass


__all__ = ["ConfigError", "Kill", "Materialiser", "ReplayResult", "run_replay"]
