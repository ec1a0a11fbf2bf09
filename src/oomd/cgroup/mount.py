"""Finding the cgroup2 filesystem and what it can do.

Upstream insists that ``--cgroup-fs`` lies under the first cgroup2 mount of
``/proc/mounts``. On hybrid hosts cgroup2 lives at ``/sys/fs/cgroup/unified``, so when
``-f`` is not given we look the mount up instead of failing, and when ``-f`` is wrong
the error says where cgroup2 actually is.
"""

from __future__ import annotations

import os

from oomd.cgroup import fs
from oomd.typeshim import NamedTuple

DEFAULT_CGROUP_FS = "/sys/fs/cgroup"


class Mount(NamedTuple):
    mount_point: str
    fstype: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1 : i + 4]) == 3 and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(data: bytes) -> list[Mount]:
    mounts = []
    for line in os.fsdecode(data).splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        left_fields = left.split()
        right_fields = right.split()
        if len(left_fields) < 5 or not right_fields:
            continue
        mounts.append(Mount(_unescape(left_fields[4]), right_fields[0]))
    return mounts


def cgroup2_mounts(mountinfo_path: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points of every cgroup2 filesystem, in mount order."""
    data = fs.read_bytes(mountinfo_path)
    if data is None:
        return []
    return [m.mount_point for m in parse_mountinfo(data) if m.fstype == "cgroup2"]


def _components(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def is_under(path: str, mount_point: str) -> bool:
    """Component-wise prefix test, purely textual, as upstream's check; empty paths
    are never under anything (upstream's IsUnderParentPath)."""
    if not path or not mount_point:
        return False
    mount = _components(mount_point)
    return _components(path)[: len(mount)] == mount


class CgroupFsError(Exception):
    pass


def resolve_cgroup_fs(
    requested: str | None, mountinfo_path: str = "/proc/self/mountinfo"
) -> tuple[str, str | None]:
    """The cgroup2 root to use and an optional note to log.

    ``requested`` is the ``-f`` value or None when the flag was not given.
    """
    mounts = cgroup2_mounts(mountinfo_path)
    if requested is not None:
        if any(is_under(requested, m) for m in mounts):
            return requested, None
        where = (
            f"cgroup2 is mounted at {', '.join(mounts)}"
            if mounts
            else "no cgroup2 filesystem is mounted"
        )
        raise CgroupFsError(f"{requested} is not a valid cgroup2 filesystem ({where})")
    if DEFAULT_CGROUP_FS in mounts:
        return DEFAULT_CGROUP_FS, None
    if not mounts:
        raise CgroupFsError(
            f"{DEFAULT_CGROUP_FS} is not a valid cgroup2 filesystem (no cgroup2 filesystem is mounted)"
        )
    chosen = mounts[0]
    return chosen, f"{DEFAULT_CGROUP_FS} is not cgroup2; using the cgroup2 mount at {chosen}"


def controllers(cgroup_fs: str) -> frozenset[str] | None:
    """Controllers available at the cgroup2 root (``cgroup.controllers``)."""
    data = fs.read_bytes(cgroup_fs.rstrip("/") + "/cgroup.controllers")
    if data is None:
        return None
    return frozenset(data.decode(errors="replace").split())
