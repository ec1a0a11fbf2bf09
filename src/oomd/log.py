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
from collections.abc import Mapping

from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

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


#: ``--log-format json`` (:func:`set_format`) and journald priorities
#: (:func:`use_journal`); both off: upstream's lines, unchanged and cheapest.
_json: Any = None
_journal = False
_PRIORITY = {"info": "<6>", "warning": "<4>", "notice": "<5>"}


def set_format(name: str) -> None:
    """``text`` (upstream's lines) or ``json`` (one object per line: time, level,
    source, message and, for a kill, the kill's fields)."""
    global _json
    if name == "json":
        import json  # only for JSON logs

        _json = json
    elif name == "text":
        _json = None
    else:
        raise ValueError(f"unknown log format {name!r} (text or json)")


def journal_stream(fd: int = 2, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``fd`` is the systemd journal's stream: ``JOURNAL_STREAM`` names its
    device and inode (systemd.exec(5))."""
    value = environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    try:
        st = os.fstat(fd)
        return bool(ino) and (int(dev), int(ino)) == (st.st_dev, st.st_ino)
    except (OSError, ValueError):
        return False


def use_journal(enabled: bool) -> None:
    """Prefix every line with its syslog priority (``<6>`` info, ``<5>`` notice,
    ``<4>`` warning) so journald keeps the levels."""
    global _journal
    _journal = enabled


def _structured(level: str, depth: int, msg: str, fields: Mapping[str, Any] | None) -> str:
    frame = sys._getframe(depth + 1)
    now = time.time()
    record: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        + f".{int(now % 1 * 1000):03d}Z",
        "level": level,
        "source": f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}",
        "message": msg,
    }
    if fields:
        record.update(fields)
    return str(_json.dumps(record))


def _line(level: str, depth: int, msg: str, fields: Mapping[str, Any] | None = None) -> None:
    text = (
        _structured(level, depth + 1, msg, fields)
        if _json is not None
        else _prefix(depth + 1) + msg
    )
    _write((_PRIORITY[level] + text if _journal else text) + "\n")


def info(msg: str, *, depth: int = 1, fields: Mapping[str, Any] | None = None) -> None:
    """One OLOG line (suppressed while a silenced ruleset's plugin runs). ``fields``
    go into the JSON object of ``--log-format json`` (a kill's fields)."""
    if _silenced:
        return
    if _json is None and not _journal:
        _write(_prefix(depth) + msg + "\n")
        return
    _line("info", depth, msg, fields)


def warn(msg: str) -> None:
    """Like :func:`info`; a separate name so warnings are easy to grep in code."""
    if _silenced:
        return
    _line("warning", 1, msg)


def always(msg: str) -> None:
    """A line that silence-logs cannot hide (start-up banners, fatal errors)."""
    _line("notice", 1, msg)


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

    def write(
        self, msg: str, prefix: str = "oomd kill", fields: Mapping[str, Any] | None = None
    ) -> None:
        line = f"{prefix}: {msg}" if prefix else msg
        if not line.endswith("\n"):
            line += "\n"
        try:
            os.write(self._fd, line.encode("utf-8", "replace"))
        except OSError as e:
            always(f"error writing: {e.strerror}")
            always("Unable to write log to output file")
        info(msg, depth=2, fields=fields)

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

    def write(
        self, msg: str, prefix: str = "oomd kill", fields: Mapping[str, Any] | None = None
    ) -> None:
        self.lines.append(f"{prefix}: {msg}" if prefix else msg)
        info(msg, depth=2, fields=fields)

    def close(self) -> None:
        pass
