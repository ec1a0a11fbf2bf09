"""Reading files that decide what gets killed (drop-in configs, plugin files): only
ones owned by root (or the daemon's own user) and not writable by group or others.
The check and the read go through one descriptor, so what is checked is what is read."""

from __future__ import annotations

import os
import stat


class Untrusted(Exception):
    """A file (or directory) that must not be trusted; the message says why."""


def untrusted_reason(st: os.stat_result) -> str | None:
    """Why a file or directory with this status must not be trusted, or None."""
    if st.st_uid not in (0, os.geteuid()):
        return f"owned by uid {st.st_uid}, not root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by its group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def read_trusted(path: str, dir_fd: int | None = None) -> bytes | None:
    """The content of ``path`` (relative to ``dir_fd`` if given); None if it is not a
    regular file. Raises :class:`Untrusted` or OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        why = untrusted_reason(st)
        if why is not None:
            raise Untrusted(why)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
