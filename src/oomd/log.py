"""Diagnostics on stderr and the kill log on /dev/kmsg, in upstream oomd's shape.

Upstream has two sinks: OLOG (debug lines on stderr, ``MMDD HH:MM:SS [file:line] msg``)
and the kmsg kill log (``<prefix>: <msg>`` in one write, echoed to OLOG). A ruleset's
``silence-logs: plugins`` hides OLOG output while its plugins run but never kmsg writes,
so the switch lives here as a module flag the engine flips around each plugin call.
"""

from __future__ import annotations

import os
import sys
import time

_silenced = False
_stream_fd = 2


def set_silenced(silenced: bool) -> bool:
    """Silence (or unsilence) OLOG; returns the previous state so callers can restore it."""
    global _silenced
    previous = _silenced
    _silenced = silenced
    return previous


def is_silenced() -> bool:
    return _silenced


def set_output_fd(fd: int) -> None:
    """Send OLOG lines to ``fd`` instead of stderr (tests capture this way)."""
    global _stream_fd
    _stream_fd = fd


#: The formatted time of the current second, and each source file's base name: a
#: line costs one frame lookup, not a strftime and a basename (10,000 lines a tick
#: with dump_cgroup_overview always=true).
_stamp: tuple[int, str] = (-1, "")
_basenames: dict[str, str] = {}


def _prefix(depth: int) -> str:
    global _stamp
    frame = sys._getframe(depth + 1)
    filename = frame.f_code.co_filename
    name = _basenames.get(filename)
    if name is None:
        name = _basenames[filename] = os.path.basename(filename)
    now = int(time.time())
    if now != _stamp[0]:
        _stamp = (now, time.strftime("%m%d %H:%M:%S", time.localtime(now)))
    return f"{_stamp[1]} [{name}:{frame.f_lineno}] "


def _write(text: str) -> None:
    data = text.encode("utf-8", "replace")
    try:
        while data:
            written = os.write(_stream_fd, data)
            data = data[written:]
    except OSError:
        # A closed or full stderr must never take the daemon down.
        pass


def info(msg: str, *, depth: int = 1) -> None:
    """One OLOG line (suppressed while a silenced ruleset's plugin runs)."""
    if _silenced:
        return
    _write(_prefix(depth) + msg + "\n")


def warn(msg: str) -> None:
    """Like :func:`info`; a separate name so warnings are easy to grep in code."""
    if _silenced:
        return
    _write(_prefix(1) + msg + "\n")


def always(msg: str) -> None:
    """A line that silence-logs cannot hide (start-up banners, fatal errors)."""
    _write(_prefix(1) + msg + "\n")


def raw(msg: str) -> None:
    """A line with no prefix, straight to stderr (usage text, CLI errors)."""
    _write(msg if msg.endswith("\n") else msg + "\n")


class Kmsg:
    """The kill log: ``/dev/kmsg`` or the ``--kmsg-override`` file.

    Opened once (write-only, create, append, mode 0644 as upstream) so a kill under
    memory pressure does not need to open anything.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    def write(self, msg: str, prefix: str = "oomd kill") -> None:
        line = f"{prefix}: {msg}" if prefix else msg
        if not line.endswith("\n"):
            line += "\n"
        try:
            os.write(self._fd, line.encode("utf-8", "replace"))
        except OSError as e:
            always(f"error writing: {e.strerror}")
            always("Unable to write log to output file")
        info(msg, depth=2)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class NullKmsg(Kmsg):
    """A kmsg sink that only echoes to OLOG (``-c`` mode and unit tests)."""

    def __init__(self) -> None:
        self.path = ""
        self._fd = -1
        self.lines: list[str] = []

    def write(self, msg: str, prefix: str = "oomd kill") -> None:
        self.lines.append(f"{prefix}: {msg}" if prefix else msg)
        info(msg, depth=2)

    def close(self) -> None:
        pass
