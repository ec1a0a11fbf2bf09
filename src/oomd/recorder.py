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

import contextlib
import os
import platform
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable

from oomd import events, log
from oomd.cgroup.context import CgroupContext, OomdContext
from oomd.cgroup.fs import read_bytes
from oomd.trace import XATTRS, FileKey, TraceWriter

#: Seconds recorded after a kill before its incident file is written.
INCIDENT_TAIL = 10.0
#: Incident files kept in the record directory (the oldest are removed).
MAX_INCIDENTS = 10
LIVE_NAME = "flight.oomd-trace"
SUFFIX = ".oomd-trace"


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
    if not names:
        return b""
    return b"".join(os.fsencode(str(n)) + b"\n" for n in sorted(names))


#: Host files stored every tick even when the config does not read them (cheap, and
#: what a variant config or the report most often wants): ``/proc`` relative names.
HOST_FILES = (
    "meminfo",
    "vmstat",
    "swaps",
    "pressure/memory",
    "pressure/io",
    "pressure/cpu",
)
#: Ticks the flight recorder's writer thread may lag behind before a tick is dropped.
QUEUE_TICKS = 10

_UNSEEN = "\0"

#: One tick as the tick hands it over: first clock reading, wall time, later clock
#: readings, the cgroup reads (flat: cgroup, file, data, ...), the host reads, the cgroups alive, the events.
_TickItem = tuple[
    float,
    float,
    list[float],
    list[object],
    dict[str, "bytes | None"],
    list[CgroupContext],
    list[tuple[str, str, str, str]],
]


class Recorder:
    """Collects one tick's reads from ``ctx`` and hands them to a :class:`TraceWriter`.

    The tick itself only appends the cgroup object, the file and the bytes to a list: the bytes
    are the ones the reader already holds, nothing is copied, formatted or compared.
    :meth:`end_tick` hands the list over; the paths, the comparison with the last tick
    and the SQLite writes happen in :meth:`store` - on the tick's thread, or with
    ``threaded`` on a writer thread fed by a bounded queue (:data:`QUEUE_TICKS`; when
    the writer lags that far behind, a tick is dropped, never waited for)."""

    def __init__(
        self,
        ctx: OomdContext,
        writer: TraceWriter,
        *,
        threaded: bool = False,
        after: Callable[[float, int, list[tuple[str, str, str, str]]], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.writer = writer
        self.reads: list[object] = []
        self.host: dict[str, bytes | None] = {}
        self.clock: list[float] = []
        self.events: list[tuple[str, str, str, str]] = []
        self.failed = False
        #: Ticks dropped because the writer thread lagged behind.
        self.dropped = 0
        #: CPU seconds spent in :meth:`store` (the writer's side).
        self.store_cpu = 0.0
        #: Called after each stored tick with (its time, its number, its events).
        self.after = after
        self._fs = ctx.cgroup_fs
        self._proc_root = ctx.system.proc_root
        #: cgroup object -> its path relative to the fs (None: not below it).
        self._rel: dict[object, str | None] = {}
        source = ctx.clock

        def clock() -> float:
            value = source()
            self.clock.append(value)
            return value

        # A flat list (cgroup, name, data, cgroup, ...): a tuple per read would be
        # one more object for the garbage collector to track, twice the cost.
        extend = self.reads.extend  # the list lives as long as the recorder

        def cgroup_read(cg: CgroupContext, name: str, data: object) -> None:
            extend((cg, name, data))

        def system_read(name: str, data: bytes | None) -> None:
            self.host.setdefault(name, data)

        ctx.clock = clock
        ctx.tap = cgroup_read
        ctx.system.tap = system_read
        events.subscribers.append(self._kill)
        self._queue: queue.Queue[_TickItem | None] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(QUEUE_TICKS)
            self._thread = threading.Thread(target=self._run, name="oomd-recorder", daemon=True)
            self._thread.start()

    def detach(self) -> None:
        self.ctx.tap = None
        self.ctx.system.tap = None
        with contextlib.suppress(ValueError):
            events.subscribers.remove(self._kill)

    def _kill(self, event: events.KillEvent) -> None:
        """A kill of this tick (oomd.events), named by the uuid the kill core recorded
        on the victim (a dry kill's: its action's). Nothing is read back from the
        victim, whose ``user.*`` xattrs its owner controls."""
        uuid = re.sub(r"[^0-9A-Za-z-]", "", event.kill_uuid)[:64] or os.urandom(8).hex()
        self.events.append(("kill", uuid, event.cgroup, "oomd kill: " + event.line))

    def end_tick(self) -> list[tuple[str, str, str, str]]:
        """Hand the tick just run over (stored now, or queued for the writer thread);
        returns its events. Never raises."""
        events = self.events
        clock, reads, host = self.clock, self.reads[:], self.host
        self.reads.clear()
        self.clock, self.events = [], []
        self.host = {}
        if self.failed or not clock:
            return events
        ctx = self.ctx
        tick = ctx.tick
        alive = [cg for cg in ctx.cgroups.values() if cg.last_tick == tick]
        item: _TickItem = (clock[0], time.time(), clock[1:], reads, host, alive, events)
        if self._queue is None:
            self.store(item)
            return events
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            self.events = events  # the kills go with the next tick that is stored
            if self.dropped == 1:
                log.always("Recording: the writer lags behind, dropping ticks")
        return events

    def store(self, item: _TickItem) -> None:
        """Write one tick into the trace (only what changed). Never raises: an error
        stops recording, logged."""
        if self.failed:
            return
        start = time.thread_time()
        try:
            when, wall, clock, reads, host, alive, events = item
            rel = self._rel
            fs = self._fs
            cgroups: dict[str, int] = {}
            for cg in alive:
                path = rel.get(cg, _UNSEEN)
                if path is _UNSEEN:
                    path = rel[cg] = cg.path.relative if cg.path.fs == fs else None
                if path is not None:
                    cgroups[path] = cg.inode
            files: dict[FileKey, bytes | None] = {}
            triples = iter(reads)
            for obj, name, data in zip(triples, triples, triples, strict=True):
                path = rel.get(obj)
                if path is None:
                    continue  # another fs, or read but not alive at the end of the tick
                key = (path, str(name))
                if key not in files:
                    files[key] = xattr_bytes(data) if name == XATTRS else data  # type: ignore[assignment]
            for name in HOST_FILES:
                if name not in host:
                    host[name] = read_bytes(self._proc_root + "/" + name)
            for name, content in host.items():
                files[(None, name)] = content
            tick = self.writer.add_tick(when, wall, clock, cgroups, files, events)
            if len(rel) > 2 * len(alive) + 64:  # forget the objects of cgroups gone
                keep = set(alive)
                self._rel = {cg: p for cg, p in rel.items() if cg in keep}
            if self.after is not None:
                self.after(when, tick, events)
        except Exception as e:
            self.failed = True
            self.detach()
            log.always(f"Recording stopped: {type(e).__name__}: {e}")
        finally:
            self.store_cpu += time.thread_time() - start

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self.store(item)
            finally:
                self._queue.task_done()

    def sync(self) -> None:
        """Wait until every tick handed over is stored."""
        if self._queue is not None:
            self._queue.join()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop recording: no more reads or kills are taken, what is queued is stored
        and the writer thread ends (the writer stays open)."""
        self.detach()
        if self._queue is None or self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.always("Recording: the writer does not catch up, ticks lost")
        self._thread.join(timeout)
        self._queue = None
        if self.dropped:
            self.writer.set_meta("dropped_ticks", str(self.dropped))


class FlightRecorder:
    """The daemon's rolling window and its incident files (``--record-dir``).

    The tick only hands its reads over; storing them, writing incidents and pruning
    the window run on the recorder's writer thread (:class:`Recorder`, ``threaded``)."""

    def __init__(self, directory: str, keep: float, ctx: OomdContext, meta: dict[str, str]) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.directory = directory
        self.keep = float(keep)
        self.tail = min(INCIDENT_TAIL, self.keep)
        self.prune_every = max(1.0, self.keep / 4)
        meta = {**meta, "record_keep": repr(self.keep)}
        self.writer = TraceWriter(os.path.join(directory, LIVE_NAME), meta)
        self._last_prune: float | None = None
        #: (uuid, kill tick, time to write the incident at)
        self.pending: list[tuple[str, int, float]] = []
        self.written: list[str] = []
        self.recorder = Recorder(ctx, self.writer, threaded=True, after=self._after_tick)

    def end_tick(self) -> None:
        """After each tick: hand it to the writer thread. Never raises."""
        self.recorder.end_tick()

    def sync(self) -> None:
        """Wait until the writer thread has stored every tick (tests)."""
        self.recorder.sync()

    def _after_tick(self, now: float, tick: int, events: list[tuple[str, str, str, str]]) -> None:
        """On the writer thread, after each stored tick: write due incidents, drop
        what is too old."""
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
            self.recorder.stop()
            for uuid, tick, _ in self.pending:
                self._write_incident(uuid, tick)
            self.pending = []
            self.writer.close()
        except Exception as e:
            log.always(f"Recording: cannot close: {type(e).__name__}: {e}")


__all__ = ["FlightRecorder", "Recorder", "trace_meta"]
