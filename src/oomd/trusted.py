"""Reading files that decide what gets killed (drop-in configs, plugin files): only
ones owned by root (or the daemon's own user) and not writable by group or others,
in a directory whose every component up to ``/`` passes the same check (as sshd
checks ``authorized_keys``), except that an ancestor with the sticky bit (``/tmp``)
may be writable by all. The check and the read go through one descriptor, so what is
checked is what is read."""

from __future__ import annotations

import os
import stat

#: The most any user-named file (config, drop-in, plugin, an arg naming a file such
#: as ``meminfo_location``) may hold: far above any real one, and a bound on what
#: ``-C /dev/zero``-like mistakes can cost.
MAX_FILE_BYTES = 16 << 20


class NotRegular(OSError):
    """A user-named file that is not a regular file, or is too large to be one we read."""


class Untrusted(Exception):
    """A file (or directory) that must not be trusted; the message says why."""


def untrusted_reason(st: os.stat_result) -> str | None:
    """Why a file or directory with this status must not be trusted, or None."""
    if st.st_uid not in (0, os.geteuid()):
        return f"owned by uid {st.st_uid}, not root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by its group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def untrusted_dir_chain(directory: str, name_leaf: bool = False) -> str | None:
    """Why the directory ``directory`` (absolute, symlinks resolved) or one of its
    ancestors must not be trusted, or None. Each must be owned by root (or the
    daemon's user) and not writable by group or others; an ancestor (never
    ``directory`` itself) may be writable by all when it has the sticky bit, since
    then nobody but its owner can rename or remove the root-owned entry below it.
    A component that is a symlink (swapped in since the path was resolved) is refused.
    The reason names the component, except ``directory`` itself unless ``name_leaf``."""
    path = os.path.normpath(directory)
    if not os.path.isabs(path):
        return f"{directory}: not an absolute path"
    leaf = True
    while True:
        try:
            st = os.lstat(path)
        except OSError as e:
            return f"cannot check {path}: {e.strerror}"
        if not stat.S_ISDIR(st.st_mode):
            why: str | None = "not a directory"
        elif not leaf and st.st_mode & stat.S_ISVTX and st.st_uid in (0, os.geteuid()):
            why = None  # /tmp: a sticky ancestor writable by all
        else:
            why = untrusted_reason(st)
        if why is not None:
            return why if leaf and not name_leaf else f"{path} is {why}"
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path, leaf = parent, False


def _directory_of(fd: int, path: str) -> str | None:
    """The real directory holding the file open as ``fd`` (what the kernel opened,
    whatever symlinks ``path`` went through), or None where it cannot be known."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        real = os.path.realpath(path) if os.path.isabs(path) else ""
    if not real.startswith("/") or real.endswith(" (deleted)"):
        return None
    return os.path.dirname(real)


def read_trusted(path: str, dir_fd: int | None = None) -> bytes | None:
    """The content of ``path`` (relative to ``dir_fd`` if given); None if it is not a
    regular file. The file and every directory above it (after symlinks) are checked.
    Raises :class:`Untrusted` or OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        why = untrusted_reason(st)
        if why is not None:
            raise Untrusted(why)
        directory = _directory_of(fd, path)
        if directory is None:
            raise Untrusted("cannot tell which directory holds it")
        why = untrusted_dir_chain(directory, name_leaf=True)
        if why is not None:
            raise Untrusted(why)
        return _read_bounded(fd)
    finally:
        os.close(fd)


def read_regular(path: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The content of the user-named file ``path``, which must be a regular file of at
    most ``limit`` bytes: a FIFO is refused instead of blocking in ``open()`` or
    ``read()``, a device such as ``/dev/zero`` instead of read without end. Raises
    OSError (:class:`NotRegular`, whose ``strerror`` says why, for those two cases)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegular(0, "not a regular file", path)
        return _read_bounded(fd, limit, path)
    finally:
        os.close(fd)


def read_root_owned(path: str, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``, a regular file owned by root, opened without
    following a symlink and without blocking (a FIFO a user planted at a fixed path in
    /tmp would block ``open()``; a symlink would copy a file only root may read).
    Longer files are cut at ``limit``. Raises :class:`Untrusted` or OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Untrusted("not a regular file")
        if st.st_uid != 0:
            raise Untrusted(f"owned by uid {st.st_uid}, not root")
        chunks = []
        size = 0
        while size < limit and (chunk := os.read(fd, min(1 << 16, limit - size))):
            size += len(chunk)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _read_bounded(fd: int, limit: int = MAX_FILE_BYTES, path: str = "") -> bytes:
    chunks = []
    size = 0
    while chunk := os.read(fd, 1 << 16):
        size += len(chunk)
        if size > limit:
            raise NotRegular(0, f"larger than {limit} bytes", path)
        chunks.append(chunk)
    return b"".join(chunks)
