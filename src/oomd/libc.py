"""The C library, loaded once, for the few calls Python's os module lacks (mlockall,
fstatfs, inotify, process_mrelease)."""

from __future__ import annotations

import ctypes
from functools import cache


@cache
def libc() -> ctypes.CDLL:
    """The process's libc with errno tracking; raises OSError if it cannot load."""
    return ctypes.CDLL(None, use_errno=True)
