"""Finding the cgroup2 filesystem (``oomd.cgroup.mount``).

Upstream reference: ``FsTest.IsUnderParentPath``, ``FsTest.GetCgroup2MountPoint``,
``FsTest.ReadControllers`` and reference section 1.2 (the cgroup-fs check).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oomd.cgroup.mount import (
    CgroupFsError,
    Mount,
    cgroup2_mounts,
    controllers,
    is_under,
    parse_mountinfo,
    resolve_cgroup_fs,
)
from tests.support.tree import FakeTree

# Lines in /proc/self/mountinfo format (fields 5 and after " - " matter).
ROOT = "22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw"
PROC = "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw"
SYSFS = "24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw"
UNIFIED_CGROUP2 = (
    "26 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - "
    "cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot"
)
HYBRID_TMPFS = (
    "26 24 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755"
)
HYBRID_CGROUP2 = (
    "27 26 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - "
    "cgroup2 cgroup2 rw,nsdelegate"
)
HYBRID_V1_MEMORY = (
    "28 26 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:6 - "
    "cgroup cgroup rw,memory"
)


def mountinfo(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "mountinfo"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


# --- parse_mountinfo -------------------------------------------------------------


def test_parse_mountinfo_mount_point_and_fstype() -> None:
    """Field 5 is the mount point and the first field after " - " the fs type."""
    data = "\n".join([ROOT, PROC, UNIFIED_CGROUP2]).encode()
    assert parse_mountinfo(data) == [
        Mount("/", "ext4"),
        Mount("/proc", "proc"),
        Mount("/sys/fs/cgroup", "cgroup2"),
    ]


def test_parse_mountinfo_without_optional_fields() -> None:
    """Optional fields (``shared:N``) may be absent."""
    line = b"30 22 0:40 / /mnt/cg rw,relatime - cgroup2 none rw"
    assert parse_mountinfo(line) == [Mount("/mnt/cg", "cgroup2")]


def test_parse_mountinfo_unescapes_octal_spaces() -> None:
    """The kernel escapes space as \\040 (also tab \\011, backslash \\134)."""
    data = (
        b"30 22 0:40 / /mnt/my\\040cgroup rw,relatime shared:9 - cgroup2 cgroup2 rw\n"
        b"31 22 0:41 / /mnt/a\\011b\\134c rw - tmpfs tmpfs rw\n"
    )
    assert parse_mountinfo(data) == [
        Mount("/mnt/my cgroup", "cgroup2"),
        Mount("/mnt/a\tb\\c", "tmpfs"),
    ]


def test_parse_mountinfo_skips_malformed_lines() -> None:
    """Lines without the " - " separator or with too few fields are ignored."""
    data = b"garbage\n1 2 3 - cgroup2 x rw\n\n" + UNIFIED_CGROUP2.encode() + b"\n"
    assert parse_mountinfo(data) == [Mount("/sys/fs/cgroup", "cgroup2")]


def test_cgroup2_mounts_in_mount_order(tmp_path: Path) -> None:
    """Every cgroup2 mount point, in order; v1 ``cgroup`` mounts are not cgroup2."""
    path = mountinfo(
        tmp_path,
        ROOT,
        HYBRID_TMPFS,
        HYBRID_CGROUP2,
        HYBRID_V1_MEMORY,
        "40 22 0:50 / /mnt/cg2 rw - cgroup2 cgroup2 rw",
    )
    assert cgroup2_mounts(path) == ["/sys/fs/cgroup/unified", "/mnt/cg2"]


def test_cgroup2_mounts_missing_file_is_empty(tmp_path: Path) -> None:
    """An unreadable mount table means no cgroup2 mount is known."""
    assert cgroup2_mounts(str(tmp_path / "nope")) == []


# --- is_under --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "mount_point", "expected"),
    [
        ("/sys/fs/cgroup/", "/sys/fs/cgroup/", True),
        ("/sys/fs/cgroup/blkio", "/sys/fs/cgroup/", True),
        ("/sys/fs/", "/sys/fs/cgroup/", False),
        ("/sys/", "/", True),
        ("/", "/sys/", False),
        ("/sys/fs/cgroup", "/sys/fs/cgroup/", True),
        ("/sys/fs/cgroupfoo", "/sys/fs/cgroup", False),
        ("/sys//fs/cgroup/a", "/sys/fs/cgroup", True),
        ("sys/fs/cgroup", "/sys/fs/cgroup", True),
    ],
)
def test_is_under_component_wise(path: str, mount_point: str, expected: bool) -> None:
    """FsTest.IsUnderParentPath: component-wise prefix check; "/" is parent of all;
    textual ("cgroupfoo" is not under "cgroup")."""
    assert is_under(path, mount_point) is expected


@pytest.mark.parametrize(("path", "mount_point"), [("/sys/", ""), ("", "/sys/"), ("", "")])
def test_is_under_empty_paths_are_false(path: str, mount_point: str) -> None:
    """FsTest.IsUnderParentPath: an empty parent or an empty path is never "under"
    (``isUnderParentPath("", "/sys/")``, ``("/sys/", "")``, ``("", "")`` are false)."""
    assert is_under(path, mount_point) is False


# --- resolve_cgroup_fs -----------------------------------------------------------


def test_resolve_requested_path_under_cgroup2_mount(tmp_path: Path) -> None:
    """Reference 1.2: ``--cgroup-fs`` must lie under a cgroup2 mount; it is kept as given."""
    path = mountinfo(tmp_path, ROOT, SYSFS, UNIFIED_CGROUP2)
    assert resolve_cgroup_fs("/sys/fs/cgroup", path) == ("/sys/fs/cgroup", None)
    assert resolve_cgroup_fs("/sys/fs/cgroup/workload.slice", path) == (
        "/sys/fs/cgroup/workload.slice",
        None,
    )


def test_resolve_requested_path_not_under_cgroup2_names_the_real_mount(tmp_path: Path) -> None:
    """Module docstring: when ``-f`` is wrong the error says where cgroup2 actually is."""
    path = mountinfo(tmp_path, ROOT, HYBRID_TMPFS, HYBRID_CGROUP2, HYBRID_V1_MEMORY)
    with pytest.raises(CgroupFsError) as excinfo:
        resolve_cgroup_fs("/sys/fs/cgroup", path)
    message = str(excinfo.value)
    assert "/sys/fs/cgroup/unified" in message
    assert "/sys/fs/cgroup" in message


def test_resolve_requested_path_next_to_mount_is_rejected(tmp_path: Path) -> None:
    """Component-wise: /sys/fs/cgroupfoo is not under /sys/fs/cgroup."""
    path = mountinfo(tmp_path, ROOT, UNIFIED_CGROUP2)
    with pytest.raises(CgroupFsError, match="/sys/fs/cgroup"):
        resolve_cgroup_fs("/sys/fs/cgroupfoo", path)


def test_resolve_requested_without_any_cgroup2_fails(tmp_path: Path) -> None:
    """No cgroup2 anywhere: the requested path is rejected with a clear reason."""
    path = mountinfo(tmp_path, ROOT, PROC, SYSFS)
    with pytest.raises(CgroupFsError, match="no cgroup2"):
        resolve_cgroup_fs("/sys/fs/cgroup", path)


def test_resolve_default_when_sys_fs_cgroup_is_cgroup2(tmp_path: Path) -> None:
    """FsTest.GetCgroup2MountPoint: on a unified host the default is /sys/fs/cgroup."""
    path = mountinfo(tmp_path, ROOT, PROC, SYSFS, UNIFIED_CGROUP2)
    assert resolve_cgroup_fs(None, path) == ("/sys/fs/cgroup", None)


def test_resolve_default_prefers_sys_fs_cgroup_over_other_mounts(tmp_path: Path) -> None:
    """/sys/fs/cgroup wins even when another cgroup2 mount comes first."""
    path = mountinfo(
        tmp_path, ROOT, "40 22 0:50 / /mnt/cg2 rw - cgroup2 cgroup2 rw", UNIFIED_CGROUP2
    )
    assert resolve_cgroup_fs(None, path) == ("/sys/fs/cgroup", None)


def test_resolve_default_on_hybrid_host_uses_unified_mount_with_note(tmp_path: Path) -> None:
    """Module docstring: on hybrid hosts cgroup2 lives at /sys/fs/cgroup/unified and is
    used (with a note to log) instead of failing."""
    path = mountinfo(tmp_path, ROOT, SYSFS, HYBRID_TMPFS, HYBRID_CGROUP2, HYBRID_V1_MEMORY)
    chosen, note = resolve_cgroup_fs(None, path)
    assert chosen == "/sys/fs/cgroup/unified"
    assert note is not None
    assert "/sys/fs/cgroup/unified" in note


def test_resolve_default_without_cgroup2_fails(tmp_path: Path) -> None:
    """No cgroup2 mount at all (pure v1 host): an error, as upstream."""
    path = mountinfo(tmp_path, ROOT, SYSFS, HYBRID_TMPFS, HYBRID_V1_MEMORY)
    with pytest.raises(CgroupFsError, match="/sys/fs/cgroup"):
        resolve_cgroup_fs(None, path)


def test_resolve_with_unreadable_mount_table_fails(tmp_path: Path) -> None:
    """A missing mount table is treated as "no cgroup2"."""
    missing = str(tmp_path / "missing")
    with pytest.raises(CgroupFsError):
        resolve_cgroup_fs(None, missing)
    with pytest.raises(CgroupFsError):
        resolve_cgroup_fs("/sys/fs/cgroup", missing)


def test_resolve_requested_mount_point_with_escaped_space(tmp_path: Path) -> None:
    """A cgroup2 mount whose path has a space (\\040 in mountinfo) is recognised."""
    path = mountinfo(tmp_path, "30 22 0:40 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw")
    assert resolve_cgroup_fs("/mnt/my cg/a", path) == ("/mnt/my cg/a", None)


# --- controllers -----------------------------------------------------------------


def test_controllers_reads_root_controllers(tree: FakeTree) -> None:
    """FsTest.ReadControllers: cgroup.controllers tokens."""
    tree.write("", "cgroup.controllers", "cpu io memory pids\n")
    assert controllers(tree.fs) == frozenset({"cpu", "io", "memory", "pids"})
    assert controllers(tree.fs + "/") == frozenset({"cpu", "io", "memory", "pids"})


def test_controllers_empty_file_is_empty_set(tree: FakeTree) -> None:
    """A cgroup2 root with no controllers enabled has an empty file."""
    tree.write("", "cgroup.controllers", "")
    assert controllers(tree.fs) == frozenset()


def test_controllers_missing_file_is_none(tmp_path: Path) -> None:
    """Not a cgroup2 root: no cgroup.controllers, no answer."""
    assert controllers(str(tmp_path)) is None
