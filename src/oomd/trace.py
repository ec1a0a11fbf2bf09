"""The trace file: what the daemon's readers saw, tick by tick, in one SQLite file.

Format ``oomd-trace`` version 1 (docs/trace-format.md is the reference). Every file a
reader opened is stored line by line, and a line only when it changed since the
previous tick, so an idle cgroup costs nothing per tick:

* ``meta(key, value)``: ``format``, ``version``, ``interval``, ``cgroup_fs``,
  ``dry_run``, ``own_cgroup``, ``controllers``, ``page_size``, ``source``,
  ``hostname``, ``kernel``, ``created``, ``config`` (the config text), ``complete``.
* ``ticks(tick, time, wall, clock)``: the tick's monotonic time (what the plugins'
  clock read first), wall-clock time, and every later clock reading of the tick.
* ``cgroups(id, path, inode, born, last)``: each cgroup the tick looked at (path
  relative to the cgroup filesystem root, ``''`` for the root), first and last tick.
* ``series(id, cgroup, file, key)``: one line of one file (``cgroup`` NULL: a host
  file, ``file`` relative to ``/proc``); ``key`` NULL marks the file itself.
* ``samples(tick, series, value)``: a value from that tick on (NULL: the line is gone,
  or for a file marker, the file could not be read).
* ``events(tick, kind, uuid, cgroup, line)``: what the daemon did (kills).

Bytes are stored as Latin-1 text (one character per byte), so any content round-trips.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

FORMAT = "oomd-trace"
VERSION = 1

#: The pseudo-file of a cgroup whose lines are its extended attribute names.
XATTRS = "xattrs"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE ticks (tick INTEGER PRIMARY KEY, time REAL NOT NULL, wall REAL NOT NULL,
                    clock TEXT NOT NULL DEFAULT '');
CREATE TABLE cgroups (id INTEGER PRIMARY KEY, path TEXT NOT NULL, inode INTEGER NOT NULL,
                      born INTEGER NOT NULL, last INTEGER NOT NULL);
CREATE TABLE series (id INTEGER PRIMARY KEY, cgroup INTEGER, file TEXT NOT NULL, key TEXT);
CREATE TABLE samples (tick INTEGER NOT NULL, series INTEGER NOT NULL, value TEXT,
                      PRIMARY KEY (tick, series)) WITHOUT ROWID;
CREATE TABLE events (tick INTEGER NOT NULL, kind TEXT NOT NULL, uuid TEXT NOT NULL,
                     cgroup TEXT NOT NULL, line TEXT NOT NULL);
CREATE VIEW readings AS
  SELECT s.tick, t.time, c.path AS cgroup, r.file, r.key, s.value
  FROM samples s JOIN series r ON r.id = s.series JOIN ticks t ON t.tick = s.tick
  LEFT JOIN cgroups c ON c.id = r.cgroup;
"""

TABLES = ("meta", "ticks", "cgroups", "series", "samples", "events")


class TraceError(Exception):
    """A file that is not a readable trace; the message says why, for the operator."""


def split_lines(content: bytes) -> dict[str | None, str | None]:
    """A file's content as {key: value}: each line split before its first blank (the
    key, the rest with its blank), in file order; the ``None`` key is the file marker
    ('1': ends with a newline, '0': does not). A single line, or lines whose keys are
    not unique or empty, are kept whole under the key ''."""
    text = content.decode("latin-1")
    ends = text.endswith("\n")
    if ends:
        text = text[:-1]
    out: dict[str | None, str | None] = {None: "1" if ends else "0"}
    lines = text.split("\n")
    if len(lines) > 1:
        parsed: dict[str | None, str | None] = {}
        for line in lines:
            cut = _first_blank(line)
            key = line[:cut]
            if not key or key in parsed:
                break
            parsed[key] = line[cut:]
        else:
            out.update(parsed)
            return out
    out[""] = text
    return out


def _first_blank(line: str) -> int:
    space = line.find(" ")
    tab = line.find("\t")
    if space < 0:
        return tab if tab >= 0 else len(line)
    return space if tab < 0 else min(space, tab)


def join_lines(lines: Mapping[str | None, str | None]) -> bytes | None:
    """The inverse of :func:`split_lines` (None: the file is absent)."""
    marker = lines.get(None)
    if marker is None:
        return None
    whole = lines.get("")
    if whole is not None:
        text = whole
    else:
        text = "\n".join(k + v for k, v in lines.items() if k is not None and v is not None)
    return (text + ("\n" if marker == "1" else "")).encode("latin-1")


def _path_text(path: str) -> str | bytes:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # a cgroup name that is not UTF-8 (surrogateescape)
        return os.fsencode(path)
    return path


def _path_from(value: object) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else str(value)


@dataclass
class Event:
    tick: int
    kind: str
    uuid: str
    cgroup: str
    line: str


FileKey = tuple[str | None, str]  # (cgroup relative path or None for a host file, file)


class TraceWriter:
    """Appends ticks to a new trace file, storing only what changed."""

    def __init__(self, path: str, meta: Mapping[str, str]) -> None:
        self.path = path
        for leftover in (path, path + "-journal"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=MEMORY")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.executescript(SCHEMA)
        base = {"format": FORMAT, "version": str(VERSION), "complete": "0"}
        self.db.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [*base.items(), *((k, str(v)) for k, v in meta.items())],
        )
        self.tick_no = 0
        #: (path, inode) -> cgroup id; id -> last tick seen (flushed lazily).
        self._cgroups: dict[tuple[str, int], int] = {}
        self._last: dict[int, int] = {}
        self._flushed: dict[int, int] = {}
        #: (cgroup id or None, file, key) -> series id
        self._series: dict[tuple[int | None, str, str | None], int] = {}
        #: (cgroup id or None, file) -> (last content, its lines)
        self._files: dict[
            tuple[int | None, str], tuple[bytes | None, dict[str | None, str | None]]
        ] = {}

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def add_tick(
        self,
        time: float,
        wall: float,
        clock: Iterable[float],
        cgroups: Mapping[str, int],
        files: Mapping[FileKey, bytes | None],
        events: Iterable[tuple[str, str, str, str]] = (),
    ) -> int:
        """Store one tick: the cgroups looked at (path -> inode), the content of every
        file read (None: unreadable) and events (kind, uuid, cgroup, line). Returns
        the tick's number."""
        self.tick_no += 1
        tick = self.tick_no
        db = self.db
        rows: list[tuple[int, int, str | None]] = []
        db.execute("BEGIN")
        try:
            db.execute(
                "INSERT INTO ticks VALUES (?, ?, ?, ?)",
                (tick, time, wall, " ".join(repr(c) for c in clock)),
            )
            ids: dict[str, int] = {}
            for path, inode in cgroups.items():
                ids[path] = self._cgroup_id(path, inode, tick)
            for (cgroup, name), content in files.items():
                cid = None if cgroup is None else ids.get(cgroup)
                if cgroup is not None and cid is None:
                    continue  # read but not adopted: cannot happen in the daemon
                key = (cid, name)
                previous = self._files.get(key)
                if previous is not None and previous[0] == content:
                    continue
                old = previous[1] if previous is not None else {}
                new: dict[str | None, str | None] = (
                    {None: None} if content is None else split_lines(content)
                )
                for line_key, value in new.items():
                    if old.get(line_key, "\0") != value:
                        rows.append((tick, self._series_id(cid, name, line_key), value))
                for line_key in old:
                    if line_key not in new and old[line_key] is not None:
                        rows.append((tick, self._series_id(cid, name, line_key), None))
                self._files[key] = (content, new)
            db.executemany("INSERT INTO samples VALUES (?, ?, ?)", rows)
            db.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?)", [(tick, *e) for e in events]
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return tick

    def _cgroup_id(self, path: str, inode: int, tick: int) -> int:
        key = (path, inode)
        cid = self._cgroups.get(key)
        if cid is None:
            cursor = self.db.execute(
                "INSERT INTO cgroups (path, inode, born, last) VALUES (?, ?, ?, ?)",
                (_path_text(path), inode, tick, tick),
            )
            cid = self._cgroups[key] = int(cursor.lastrowid or 0)
            self._flushed[cid] = tick
        self._last[cid] = tick
        return cid

    def _series_id(self, cgroup: int | None, name: str, key: str | None) -> int:
        skey = (cgroup, name, key)
        sid = self._series.get(skey)
        if sid is None:
            cursor = self.db.execute(
                "INSERT INTO series (cgroup, file, key) VALUES (?, ?, ?)", skey
            )
            sid = self._series[skey] = int(cursor.lastrowid or 0)
        return sid

    def flush(self) -> None:
        """Write every cgroup's last tick (kept in memory between flushes)."""
        changed = [
            (last, cid) for cid, last in self._last.items() if self._flushed.get(cid) != last
        ]
        if changed:
            self.db.executemany("UPDATE cgroups SET last = ? WHERE id = ?", changed)
            for last, cid in changed:
                self._flushed[cid] = last

    def first_tick(self) -> int:
        row = self.db.execute("SELECT MIN(tick) FROM ticks").fetchone()
        return int(row[0]) if row and row[0] is not None else self.tick_no + 1

    def prune(self, cut: int) -> None:
        """Drop the ticks before ``cut``: the state at ``cut`` is kept (each series'
        latest value up to ``cut`` moves to ``cut``), the rest of the past goes."""
        self.flush()
        db = self.db
        db.execute("BEGIN")
        try:
            db.execute(
                "DELETE FROM samples WHERE tick <= ?1 AND (series, tick) NOT IN "
                "(SELECT series, MAX(tick) FROM samples WHERE tick <= ?1 GROUP BY series)",
                (cut,),
            )
            db.execute("UPDATE samples SET tick = ?1 WHERE tick < ?1", (cut,))
            gone = [r[0] for r in db.execute("SELECT id FROM cgroups WHERE last < ?", (cut,))]
            if gone:
                db.executemany(
                    "DELETE FROM samples WHERE series IN (SELECT id FROM series WHERE cgroup = ?)",
                    [(g,) for g in gone],
                )
                db.executemany("DELETE FROM series WHERE cgroup = ?", [(g,) for g in gone])
                db.executemany("DELETE FROM cgroups WHERE id = ?", [(g,) for g in gone])
                gone_set = set(gone)
                for ckey in [k for k, v in self._cgroups.items() if v in gone_set]:
                    del self._cgroups[ckey]
                for skey in [k for k in self._series if k[0] in gone_set]:
                    del self._series[skey]
                for fkey in [k for k in self._files if k[0] in gone_set]:
                    del self._files[fkey]
                for g in gone:
                    self._last.pop(g, None)
                    self._flushed.pop(g, None)
            db.execute("UPDATE cgroups SET born = ?1 WHERE born < ?1", (cut,))
            db.execute("DELETE FROM ticks WHERE tick < ?", (cut,))
            db.execute("DELETE FROM events WHERE tick < ?", (cut,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def copy_to(self, path: str, first: int | None = None) -> None:
        """A complete trace of everything kept (from tick ``first`` on) in ``path``."""
        self.flush()
        tmp = path + ".tmp"
        if os.path.exists(tmp):
            os.unlink(tmp)
        target = sqlite3.connect(tmp)
        try:
            self.db.backup(target)
            target.execute("INSERT OR REPLACE INTO meta VALUES ('complete', '1')")
            target.commit()
        finally:
            target.close()
        if first is not None:
            copy = TraceWriter.__new__(TraceWriter)
            copy.db = sqlite3.connect(tmp, isolation_level=None)
            copy._cgroups, copy._last, copy._flushed, copy._series, copy._files = {}, {}, {}, {}, {}
            try:
                copy.prune(first)
                copy.db.execute("VACUUM")
            finally:
                copy.db.close()
        os.replace(tmp, path)

    def close(self) -> None:
        self.flush()
        self.set_meta("complete", "1")
        self.db.close()


@dataclass
class TickData:
    """One tick of a trace: its times, the cgroups alive, and the files that changed."""

    tick: int
    time: float
    wall: float
    clock: list[float]
    born: list[tuple[int, str]] = field(default_factory=list)
    died: list[tuple[int, str]] = field(default_factory=list)
    #: (cgroup id or None, file) -> new content (None: absent)
    changed: dict[tuple[int | None, str], bytes | None] = field(default_factory=dict)


class Trace:
    """A trace opened for reading; every problem is a :class:`TraceError`."""

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.isfile(path):
            raise TraceError(f"{path}: no such trace file")
        try:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as e:
            if "malformed" in str(e):
                raise TraceError(f"{path}: the trace is damaged or truncated ({e})") from None
            raise TraceError(f"{path}: not an oomd trace (SQLite says: {e})") from None
        missing = [t for t in TABLES if t not in tables]
        if missing:
            raise TraceError(f"{path}: not an oomd trace (no table {', '.join(missing)})")
        self.meta = dict(self._query("SELECT key, value FROM meta"))
        if self.meta.get("format") != FORMAT:
            raise TraceError(f"{path}: not an oomd trace (format {self.meta.get('format')!r})")
        version = self.meta.get("version", "")
        if not version.isdigit() or int(version) > VERSION:
            raise TraceError(
                f"{path}: trace format version {version} is newer than this oomd reads "
                f"(up to {VERSION})"
            )
        check = self._query("PRAGMA quick_check")
        if check != [("ok",)]:
            raise TraceError(f"{path}: the trace is damaged or truncated ({check[0][0]})")
        self.cgroups: dict[int, tuple[str, int, int, int]] = {
            int(i): (_path_from(p), int(ino), int(born), int(last))
            for i, p, ino, born, last in self._query(
                "SELECT id, path, inode, born, last FROM cgroups"
            )
        }
        self.series: dict[int, tuple[int | None, str, str | None]] = {
            int(i): (c, str(f), k)
            for i, c, f, k in self._query("SELECT id, cgroup, file, key FROM series")
        }
        self.ticks: list[tuple[int, float, float, list[float]]] = []
        for tick, time, wall, clock in self._query(
            "SELECT tick, time, wall, clock FROM ticks ORDER BY tick"
        ):
            try:
                readings = [float(c) for c in str(clock).split()]
            except ValueError:
                raise TraceError(f"{path}: tick {tick} has a malformed clock") from None
            self.ticks.append((int(tick), float(time), float(wall), readings))
        if not self.ticks:
            raise TraceError(f"{path}: the trace holds no tick")
        self.events = [
            Event(int(t), str(k), str(u), str(c), str(line))
            for t, k, u, c, line in self._query(
                "SELECT tick, kind, uuid, cgroup, line FROM events ORDER BY tick, rowid"
            )
        ]

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return [tuple(r) for r in self.db.execute(sql, args)]
        except sqlite3.DatabaseError as e:
            raise TraceError(f"{self.path}: the trace is damaged or truncated ({e})") from None

    @property
    def interval(self) -> float:
        try:
            return float(self.meta.get("interval", "1"))
        except ValueError:
            return 1.0

    def close(self) -> None:
        self.db.close()

    def replay(self) -> Iterator[TickData]:
        """Tick by tick: cgroups born and died, and each file whose content changed."""
        lines: dict[tuple[int | None, str], dict[str | None, str | None]] = {}
        by_born: dict[int, list[tuple[int, str]]] = {}
        by_died: dict[int, list[tuple[int, str]]] = {}
        for gid, (path, _, born, last) in self.cgroups.items():
            by_born.setdefault(born, []).append((gid, path))
            by_died.setdefault(last + 1, []).append((gid, path))
        try:
            cursor = self.db.execute(
                "SELECT tick, series, value FROM samples ORDER BY tick, series"
            )
        except sqlite3.DatabaseError as e:
            raise TraceError(f"{self.path}: the trace is damaged or truncated ({e})") from None
        pending: tuple[int, int, str | None] | None = None
        first = self.ticks[0][0]
        for tick, time, wall, clock in self.ticks:
            data = TickData(tick, time, wall, clock)
            data.died = by_died.get(tick, [])
            data.born = by_born.get(tick, []) + (
                [x for t, xs in by_born.items() if t < first for x in xs] if tick == first else []
            )
            touched: set[tuple[int | None, str]] = set()
            while True:
                if pending is None:
                    try:
                        row = cursor.fetchone()
                    except sqlite3.DatabaseError as e:
                        raise TraceError(
                            f"{self.path}: the trace is damaged or truncated ({e})"
                        ) from None
                    if row is None:
                        break
                    pending = (int(row[0]), int(row[1]), row[2])
                if pending[0] > tick:
                    break
                _, sid, value = pending
                pending = None
                series = self.series.get(sid)
                if series is None:
                    raise TraceError(
                        f"{self.path}: a sample names series {sid}, which is not there"
                    )
                cid, name, key = series
                file_key = (cid, name)
                state = lines.setdefault(file_key, {})
                if key is None and value is None:
                    state.clear()
                state[key] = value
                touched.add(file_key)
            for file_key in touched:
                data.changed[file_key] = join_lines(lines[file_key])
            yield data


__all__ = ["FORMAT", "VERSION", "XATTRS", "Event", "TickData", "Trace", "TraceError", "TraceWriter"]
