"""Reading and parsing the kernel's cgroup2 and /proc text files.

Every read is one ``open`` + one ``read`` + ``close`` (no buffered file objects), and
every parser is a plain function of the bytes so tests can feed it anything. A file that
is missing, unreadable, vanishing or malformed yields ``None`` ("absent"); nothing here
raises for bad kernel input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from oomd.cnum import INT64_MAX, c_int
from oomd.typeshim import NamedTuple

_READ_SIZE = 65536
_O_READ = os.O_RDONLY | os.O_CLOEXEC


def read_bytes(path: str, dir_fd: int | None = None) -> bytes | None:
    """The whole content of ``path`` (relative to ``dir_fd`` if given), or None if it
    cannot be read.

    Reading relative to a directory fd held open (the cgroup filesystem's root, see
    ``OomdContext``) spares the kernel the walk through ``/sys/fs/cgroup``'s mounts on
    every open: a quarter of the cost of a small cgroup file (bench/README.md).
    """
    try:
        fd = os.open(path, _O_READ, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        data = os.read(fd, _READ_SIZE)
        if len(data) == _READ_SIZE:
            chunks = [data]
            while True:
                more = os.read(fd, _READ_SIZE)
                if not more:
                    break
                chunks.append(more)
            data = b"".join(chunks)
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def child_dirs(path: str) -> Iterator[tuple[str, int]]:
    """(name, inode) of each child cgroup of the directory ``path``: one ``scandir``,
    dot-names and non-directories skipped; nothing if ``path`` cannot be read."""
    try:
        with os.scandir(path) as it:
            for entry in it:
                try:
                    if entry.name[0] != "." and entry.is_dir(follow_symlinks=False):
                        yield entry.name, entry.inode()
                except OSError:
                    continue
    except OSError:
        return


def write_control(path: str, text: str) -> None:
    """Write a control file the way the kernel (and upstream) expects: no truncation,
    no creation, one ``write`` of the text without a newline. Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# --- cgroup file parsers ----------------------------------------------------------


def first_line(data: bytes) -> bytes:
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def parse_single_int(data: bytes) -> int | None:
    """``memory.current``-style files: the first line as a C integer."""
    return c_int(first_line(data))


def parse_limit(data: bytes) -> int | None:
    """``memory.low``/``memory.max``-style files: exactly one line, ``max`` or a number."""
    if data[-1:] == b"\n" and data.find(b"\n") == len(data) - 1:
        # The kernel's form, one line: the common case without building a list.
        line = data[:-1]
        if line == b"max":
            return INT64_MAX
        return c_int(line)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) != 1:
        return None
    line = lines[0]
    if line == b"max":
        return INT64_MAX
    return c_int(line)


def parse_limit_tmp(data: bytes) -> int | None:
    """``memory.high.tmp``: one line ``<value|max> <duration>``; returns the value."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) != 1:
        return None
    parts = lines[0].split()
    if len(parts) != 2:
        return None
    if parts[0] == b"max":
        return INT64_MAX
    return c_int(parts[0])


class Pressure(NamedTuple):
    """One PSI line: averages in percent, ``total`` in microseconds (None if absent).

    A named tuple rather than a frozen dataclass: one is built per cgroup per tick, and
    a frozen dataclass's ``__init__`` costs five times as much."""

    avg10: float = 0.0
    avg60: float = 0.0
    avg300: float = 0.0
    total: int | None = None


ZERO_PRESSURE = Pressure()

_PSI_KEYS = (b"avg10", b"avg60", b"avg300", b"total")
#: The kernel's own form of a PSI line; anything else takes the general path.
_PSI_FAST = {
    kind: re.compile(kind + rb" avg10=([^ ]*) avg60=([^ ]*) avg300=([^ ]*) total=([^ ]*)(?: |$)")
    for kind in (b"some", b"full")
}
_new_pressure = tuple.__new__
#: PSI averages have two decimals, so few distinct values occur: one float object per
#: text (bounded), shared by every cgroup's Pressure instead of three new ones each.
_AVGS: dict[bytes, float] = {}


def _avg(text: bytes) -> float:
    value = _AVGS.get(text)
    if value is None:
        value = float(text)
        if len(_AVGS) < 20_000:
            _AVGS[text] = value
    return value


def _psi_line(line: bytes, kind: bytes) -> Pressure | None:
    tokens = line.split(b" ")
    if len(tokens) < 5 or tokens[0] != kind:
        return None
    values: list[bytes] = []
    for token, key in zip(tokens[1:5], _PSI_KEYS, strict=True):
        name, sep, value = token.partition(b"=")
        if not sep or name != key:
            return None
        values.append(value)
    try:
        return Pressure(float(values[0]), float(values[1]), float(values[2]), int(values[3]))
    except ValueError:
        return None


def parse_pressure(data: bytes, full: bool) -> Pressure | None:
    """``memory.pressure``/``io.pressure`` (and ``/proc/pressure/*``).

    The upstream format is ``some ...`` then ``full ...``; a file with only a ``some``
    line is invalid, as upstream. The experimental ``aggr`` format is also accepted.
    """
    first = data.find(b"\n")
    if data.startswith(b"some") and 0 <= first < len(data) - 1:
        # Fast path for the kernel's format (two or more lines, the first "some"); it
        # gives exactly what the general path below gives for such input.
        if full:
            end = data.find(b"\n", first + 1)
            line = data[first + 1 :] if end < 0 else data[first + 1 : end]
            m = _PSI_FAST[b"full"].match(line)
        else:
            m = _PSI_FAST[b"some"].match(data, 0, first)
        if m is not None:
            try:
                return _new_pressure(Pressure, (_avg(m[1]), _avg(m[2]), _avg(m[3]), int(m[4])))
            except ValueError:
                return None
    return parse_pressure_general(data, full)


def parse_pressure_general(data: bytes, full: bool) -> Pressure | None:
    """The general PSI parser (any layout, the experimental ``aggr`` format); the
    fast path of :func:`parse_pressure` must agree with it on kernel-format input."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) >= 2 and lines[0].startswith(b"some"):
        return _psi_line(lines[1] if full else lines[0], b"full" if full else b"some")
    if len(lines) >= 3 and lines[0].startswith(b"aggr"):
        tokens = lines[2 if full else 1].split()
        if len(tokens) != 4 or tokens[0] != (b"full" if full else b"some"):
            return None
        try:
            return Pressure(float(tokens[1]), float(tokens[2]), float(tokens[3]))
        except ValueError:
            return None
    return None


class KeyedValues:
    """A ``key value`` per line file (``memory.stat``, ``cgroup.stat``, vmstat).

    Kept as raw bytes: most ticks ask for one or two keys, so a key is found with a
    substring search and only the full mapping is parsed on demand.
    """

    __slots__ = ("_data", "_parsed")

    def __init__(self, data: bytes) -> None:
        self._data = b"\n" + data
        self._parsed: dict[str, int] | None = None

    def get(self, key: str) -> int | None:
        if self._parsed is not None:
            return self._parsed.get(key)
        data = self._data
        needle = b"\n" + key.encode() + b" "
        start = data.find(needle)
        if start < 0:
            return None
        start += len(needle)
        end = data.find(b"\n", start)
        value = data[start:] if end < 0 else data[start:end]
        try:
            return int(value)
        except ValueError:
            return None

    def as_dict(self) -> dict[str, int]:
        if self._parsed is None:
            parsed: dict[str, int] = {}
            for line in self._data.split(b"\n"):
                name, sep, value = line.partition(b" ")
                if not sep:
                    continue
                try:
                    parsed[name.decode()] = int(value)
                except ValueError:
                    continue
            self._parsed = parsed
        return self._parsed

    def lines(self) -> list[str]:
        return self._data[1:].decode(errors="replace").splitlines()


def parse_populated(data: bytes) -> bool | None:
    """``cgroup.events``: the ``populated 0|1`` line; other values are absent."""
    for line in data.split(b"\n"):
        if line.startswith(b"populated "):
            value = line[10:]
            if value == b"1":
                return True
            if value == b"0":
                return False
            return None
    return None


def parse_oom_group(data: bytes) -> bool:
    """``memory.oom.group``: exactly one line ``1`` means a group kill."""
    return data in (b"1", b"1\n")


def parse_pids(data: bytes) -> list[int]:
    """``cgroup.procs``: one pid per line; lines that are not pids are skipped."""
    pids: list[int] = []
    for line in data.split():
        try:
            pids.append(int(line))
        except ValueError:
            continue
    return pids


class IoStat(NamedTuple):
    dev: str
    rbytes: int
    wbytes: int
    rios: int
    wios: int
    dbytes: int
    dios: int


_IO_STAT_KEYS = (b"rbytes", b"wbytes", b"rios", b"wios", b"dbytes", b"dios")
_DEVICE = re.compile(rb"[0-9]+:[0-9]+")


def parse_io_stat(data: bytes) -> list[IoStat] | None:
    """``io.stat``: every line must start ``MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=..
    dbytes=.. dios=..`` in that order, else the whole file is absent (as upstream's
    sscanf). Later keys (``cost.*`` with iocost enabled) are ignored."""
    result: list[IoStat] = []
    for line in data.split(b"\n"):
        if not line:
            continue
        tokens = line.split()
        if len(tokens) < 7 or not _DEVICE.fullmatch(tokens[0]):
            return None
        values: list[int] = []
        for token, key in zip(tokens[1:7], _IO_STAT_KEYS, strict=True):
            name, sep, value = token.partition(b"=")
            if not sep or name != key:
                return None
            try:
                values.append(int(value))
            except ValueError:
                return None
        result.append(IoStat(tokens[0].decode(), *values))
    return result


def parse_meminfo(data: bytes) -> dict[str, int]:
    """``/proc/meminfo``: ``Name:   N kB`` -> bytes (``*1024`` even without ``kB``, as
    upstream)."""
    result: dict[str, int] = {}
    for line in data.split(b"\n"):
        name, sep, rest = line.partition(b":")
        if not sep:
            continue
        value = c_int(rest)
        if value is not None:
            result[name.decode(errors="replace")] = value * 1024
    return result


def parse_swaps(data: bytes) -> tuple[int, int] | None:
    """``/proc/swaps``: (total, used) bytes summed over devices; None when malformed
    (upstream crashes on a malformed line; we treat the file as unreadable)."""
    total = used = 0
    for line in data.split(b"\n")[1:]:
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) < 5:
            return None
        try:
            total += int(fields[-3]) * 1024
            used += int(fields[-2]) * 1024
        except ValueError:
            return None
    return total, used
