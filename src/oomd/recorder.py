"""Recording what the daemon's readers see, into a trace (oomd.trace).

:class:`Recorder` taps the tick's own reads (``OomdContext.tap``,
``SystemContext.tap``) and clock readings, so recording costs no extra read of the
cgroup tree: the trace holds exactly what the config's plugins looked at, which is
what a replay of that config reads back. :class:`FlightRecorder` keeps a rolling
window of the last ``keep`` seconds in ``DIR/flight.oomd-trace`` and, a short tail
after each kill, copies the window into ``DIR/<kill uuid>.oomd-trace``.

A recorder never takes the daemon down: any error is logged once and recording
stops.
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from oomd import log
from oomd.cgroup.context import CgroupContext, OomdContext
from oomd.log import Kmsg
from oomd.trace import XATTRS, FileKey, TraceWriter

#: Seconds recorded after a kill before its incident file is written.
INCIDENT_TAIL = 10.0
#: Incident files kept in the record directory (the oldest are removed).
MAX_INCIDENTS = 10
LIVE_NAME = "flight.oomd-trace"
SUFFIX = ".oomd-trace"

_KILL_LINE = re.compile(r"^\S+ \S+ \S+ (.*) -?\d+ ruleset:\[")


def trace_meta(
    ctx: OomdContext,
    *,
    interval: float,
    dry_run: bool,
    own_cgroup: str | None,
    controllers: Iterable[str] | None,
    config_text: str,
    source: str,
) -> dict[str, str]:
    """The ``meta`` rows of a trace recorded from ``ctx``."""
    own = ""
    if own_cgroup is not None and own_cgroup.startswith(ctx.cgroup_fs.rstrip("/") + "/"):
        own = own_cgroup[len(ctx.cgroup_fs.rstrip("/")) + 1 :]
    uname = platform.uname()
    return {
        "interval": repr(float(interval)),
        "cgroup_fs": ctx.cgroup_fs,
        "dry_run": "1" if dry_run else "0",
        "own_cgroup": own,
        "controllers": "" if controllers is None else " ".join(sorted(controllers)),
        "page_size": str(ctx.system.page_size),
        "source": source,
        "hostname": uname.node,
        "kernel": uname.release,
        "created": repr(time.time()),
        "config": config_text,
    }


def xattr_bytes(names: object) -> bytes | None:
    if not isinstance(names, frozenset):
        return None
    return b"".join(os.fsencode(str(n)) + b"\n" for n in sorted(names))


class Recorder:
    """Collects one tick's reads from ``ctx`` and hands them to a :class:`TraceWriter`."""

    def __init__(self, ctx: OomdContext, writer: TraceWriter) -> None:
        self.ctx = ctx
        self.writer = writer
        self.files: dict[FileKey, bytes | None] = {}
        self.clock: list[float] = []
        self.events: list[tuple[str, str, str, str]] = []
        self.failed = False
        self._fs = ctx.cgroup_fs
        source = ctx.clock

        def clock() -> float:
            value = source()
            self.clock.append(value)
            return value

        ctx.clock = clock
        ctx.tap = self._cgroup_read
        ctx.system.tap = self._system_read

    def detach(self) -> None:
        self.ctx.tap = None
        self.ctx.system.tap = None

    def _cgroup_read(self, cg: CgroupContext, name: str, data: object) -> None:
        path = cg.path
        if path.fs != self._fs:
            return
        key = (path.relative, name)
        if key not in self.files:
            self.files[key] = xattr_bytes(data) if name == XATTRS else data  # type: ignore[assignment]

    def _system_read(self, name: str, data: bytes | None) -> None:
        self.files.setdefault((None, name), data)

    def tap_kmsg(self, kmsg: Kmsg) -> Kmsg:
        """``kmsg`` with every kill line also noted as an event of the tick."""
        return _KillTap(kmsg, self._kill)

    def _kill(self, line: str) -> None:
        match = _KILL_LINE.match(line)
        victim = match.group(1) if match else ""
        uuid = ""
        if victim:
            for name in ("trusted.oomd_kill_uuid", "user.oomd_kill_uuid"):
                try:
                    uuid = os.getxattr(self._fs + "/" + victim, name).decode("ascii", "replace")
                    break
                except OSError:
                    continue
        if not uuid:  # a dry run sets no xattr: the kill's action uuid
            uuid = self.ctx.action_context.kill_uuid
        uuid = re.sub(r"[^0-9A-Za-z-]", "", uuid) or os.urandom(8).hex()
        self.events.append(("kill", uuid, victim, "oomd kill: " + line))

    def end_tick(self) -> list[tuple[str, str, str, str]]:
        """Store the tick just run; returns its events. Never raises."""
        events = self.events
        try:
            if self.failed or not self.clock:
                return events
            ctx = self.ctx
            fs = self._fs
            cgroups = {
                cg.path.relative: cg.inode
                for cg in ctx.cgroups.values()
                if cg.last_tick == ctx.tick and cg.path.fs == fs
            }
            self.writer.add_tick(
                self.clock[0], time.time(), self.clock[1:], cgroups, self.files, events
            )
        except Exception as e:
            self.failed = True
            self.detach()
            log.always(f"Recording stopped: {type(e).__name__}: {e}")
        finally:
            self.files = {}
            self.clock = []
            self.events = []
        return events


class _KillTap(Kmsg):
    """A kmsg that passes everything on and reports kill lines."""

    def __init__(self, inner: Kmsg, on_kill: Callable[[str], None]) -> None:
        self.inner = inner
        self.path = inner.path
        self._fd = -1
        self.on_kill = on_kill

    def write(
        self, msg: str, prefix: str = "oomd kill", fields: Mapping[str, Any] | None = None
    ) -> None:
        self.inner.write(msg, prefix, fields)
        if prefix == "oomd kill":
            try:
                self.on_kill(msg)
            except Exception as e:  # never let recording break a kill
                log.always(f"Recording: cannot note the kill: {e}")

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FlightRecorder:
    """The daemon's rolling window and its incident files (``--record-dir``)."""

    def __init__(self, directory: str, keep: float, ctx: OomdContext, meta: dict[str, str]) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.directory = directory
        self.keep = float(keep)
        self.tail = min(INCIDENT_TAIL, self.keep)
        self.prune_every = max(1.0, self.keep / 4)
        meta = {**meta, "record_keep": repr(self.keep)}
        self.writer = TraceWriter(os.path.join(directory, LIVE_NAME), meta)
        self.recorder = Recorder(ctx, self.writer)
        self._last_prune: float | None = None
        #: (uuid, kill tick, time to write the incident at)
        self.pending: list[tuple[str, int, float]] = []
        self.written: list[str] = []

    def tap_kmsg(self, kmsg: Kmsg) -> Kmsg:
        return self.recorder.tap_kmsg(kmsg)

    def end_tick(self) -> None:
        """After each tick: store it, write due incidents, drop what is too old."""
        recorder = self.recorder
        now = recorder.clock[0] if recorder.clock else None
        events = recorder.end_tick()
        if recorder.failed or now is None:
            return
        try:
            tick = self.writer.tick_no
            for _, uuid, _, _ in events:
                self.pending.append((uuid, tick, now + self.tail))
            due = [p for p in self.pending if p[2] <= now]
            for entry in due:
                self.pending.remove(entry)
                self._write_incident(entry[0], entry[1])
            if self._last_prune is None:
                self._last_prune = now
            elif not self.pending and now - self._last_prune >= self.prune_every:
                self._last_prune = now
                cut = self._first_tick_after(now - self.keep)
                if cut is not None:
                    self.writer.prune(cut)
        except Exception as e:
            recorder.failed = True
            recorder.detach()
            log.always(f"Recording stopped: {type(e).__name__}: {e}")

    def _first_tick_after(self, when: float) -> int | None:
        row = self.writer.db.execute(
            "SELECT MIN(tick) FROM ticks WHERE time >= ?", (when,)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _write_incident(self, uuid: str, kill_tick: int) -> None:
        row = self.writer.db.execute(
            "SELECT time FROM ticks WHERE tick = ?", (kill_tick,)
        ).fetchone()
        first = self._first_tick_after(float(row[0]) - self.keep) if row else None
        path = os.path.join(self.directory, uuid + SUFFIX)
        self.writer.copy_to(path, first)
        self.written.append(path)
        log.always(f"Recorded the kill's incident in {path}")
        incidents = sorted(
            (
                e
                for e in os.scandir(self.directory)
                if e.name.endswith(SUFFIX) and e.name != LIVE_NAME
            ),
            key=lambda e: e.stat().st_mtime,
        )
        for old in incidents[:-MAX_INCIDENTS]:
            os.unlink(old.path)

    def close(self) -> None:
        """Write the incidents still waiting for their tail, and close the window."""
        try:
            for uuid, tick, _ in self.pending:
                self._write_incident(uuid, tick)
            self.pending = []
            self.writer.close()
        except Exception as e:
            log.always(f"Recording: cannot close: {type(e).__name__}: {e}")


__all__ = ["FlightRecorder", "Recorder", "trace_meta"]
