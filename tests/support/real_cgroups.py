"""Real cgroups for the tests that need the kernel: a cgroup of the test's own under the
host's cgroup2 mount (:func:`real_cgroup`, :func:`made_dir`) and, on hybrid hosts whose
cgroup2 has no memory controller, a cgroup v1 memory cgroup to limit the same processes
(:func:`limited_cgroup`: a task limited by v1 memcg still stalls in its cgroup2
cgroup's ``memory.pressure``). Only directories the test created are removed, and only
processes it spawned are killed (by pid)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from oomd.cgroup import mount

V1_MEMORY = "/sys/fs/cgroup/memory"
_TMPFS_MAGIC = 0x01021994

#: Allocates ``anon`` MiB, then reads a file over and over: with a memory limit a bit
#: above ``anon`` the reads reclaim and refault all the time (a memory stall).
HOG = """
import os, sys, time
anon = bytearray(int(sys.argv[1]) << 20)
for i in range(0, len(anon), 4096):
    anon[i] = 1
fd = os.open(sys.argv[2], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    os.lseek(fd, 0, 0)
    while os.read(fd, 1 << 20):
        pass
"""


def cgroup2_root() -> str:
    """The host's cgroup2 mount point (skips without root or cgroup2)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create cgroups")
    mounts = mount.cgroup2_mounts()
    if not mounts:
        pytest.skip("no cgroup2 filesystem mounted")
    root = mounts[0]
    if not os.path.exists(os.path.join(root, "cgroup.procs")):
        pytest.skip(f"{root} is not a usable cgroup2 mount")
    return root


@contextmanager
def made_dir(path: str) -> Iterator[str]:
    """Create a cgroup directory; remove it at the end with every cgroup the test
    created below it."""
    try:
        os.mkdir(path)
    except OSError as e:
        pytest.skip(f"cannot create the cgroup {path}: {e.strerror}")
    try:
        yield path
    finally:
        _remove(Path(path))


def _remove(base: Path) -> None:
    """Remove ``base`` and the cgroups below it, deepest first, retrying while the
    kernel still counts exiting processes in them. A process the test left in one (its
    fixtures end it after this runs) is moved to the parent of ``base`` first, never
    signalled, so the cgroup can go."""
    below = sorted((d for d in base.rglob("*") if d.is_dir()), key=lambda p: -len(p.parts))
    for d in [*below, base]:
        for attempt in range(100):
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if attempt == 0:
                    _evacuate(d, base.parent)
                time.sleep(0.05)


def _evacuate(cgroup: Path, parent: Path) -> None:
    """Move every process still listed in ``cgroup`` into ``parent``."""
    try:
        pids = (cgroup / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        try:
            (parent / "cgroup.procs").write_text(pid)
        except OSError:
            pass  # exited meanwhile, or not movable: the retries will tell


@contextmanager
def real_cgroup(prefix: str = "oomd-test") -> Iterator[Path]:
    """A fresh cgroup with a unique name under the cgroup2 mount (skips the test,
    saying why, where none can be created); removed afterwards with everything below
    it."""
    path = os.path.join(cgroup2_root(), f"{prefix}-{uuid.uuid4().hex[:8]}")
    with made_dir(path):
        yield Path(path)


def move(pid: int, cgroup: Path) -> None:
    """Move a process the test spawned into ``cgroup``."""
    (cgroup / "cgroup.procs").write_text(str(pid))


@contextmanager
def limited_cgroup(name: str, limit_mb: int) -> Iterator[tuple[str, list[str]]]:
    """A cgroup2 cgroup (absolute path) and every ``cgroup.procs`` a process must join
    to be limited to ``limit_mb`` MiB: the cgroup2 one with ``memory.max`` where the
    memory controller is enabled there, else a cgroup v1 memory cgroup as well.
    Skips where neither is possible."""
    root = cgroup2_root()
    cg2 = os.path.join(root, f"{name}-{os.getpid()}")
    with made_dir(cg2):
        memory_max = os.path.join(cg2, "memory.max")
        if os.path.exists(memory_max):
            Path(memory_max).write_text(f"{limit_mb << 20}\n")
            yield cg2, [os.path.join(cg2, "cgroup.procs")]
            return
        if not os.path.exists(os.path.join(V1_MEMORY, "memory.limit_in_bytes")):
            pytest.skip(
                "no memory controller on cgroup2 here and no cgroup v1 memory hierarchy: "
                "nothing can make a process stall on memory"
            )
        v1 = os.path.join(V1_MEMORY, f"{name}-{os.getpid()}")
        with made_dir(v1):
            Path(v1, "memory.limit_in_bytes").write_text(f"{limit_mb << 20}\n")
            yield cg2, [os.path.join(cg2, "cgroup.procs"), os.path.join(v1, "cgroup.procs")]


def disk_file(tmp_path: Path, size_mb: int) -> Path:
    """A file of random bytes on a disk filesystem (page cache that can be reclaimed;
    tmpfs pages cannot be without swap). Skips if only tmpfs is available."""
    for directory in (tmp_path, Path("/var/tmp")):
        st = os.statvfs(directory)
        if st.f_bfree and not _is_tmpfs(directory):
            path = directory / f"oomd-psi-{os.getpid()}.bin"
            with open(path, "wb") as f:
                for _ in range(size_mb):
                    f.write(os.urandom(1 << 20))
                # Clean pages only: the hog's posix_fadvise(DONTNEED) must drop them,
                # so that its reads are charged to (and reclaimed in) its own cgroup.
                f.flush()
                os.fsync(f.fileno())
            return path
    pytest.skip("no disk-backed directory for a file whose page cache can be reclaimed")


def _is_tmpfs(directory: Path) -> bool:
    from oomd.cgroup.triggers import _fs_magic

    fd = os.open(directory, os.O_PATH)
    try:
        return _fs_magic(fd) == _TMPFS_MAGIC
    finally:
        os.close(fd)


def spawn_hog(
    procs_files: list[str], anon_mb: int, file: Path, seconds: float
) -> subprocess.Popen[bytes]:
    """Start the hog in the given cgroups (it joins them before exec)."""
    joins = "".join(f'echo $$ > "{p}" && ' for p in procs_files)
    return subprocess.Popen(
        [
            "sh",
            "-c",
            f'{joins}exec "$0" -c "$1" {anon_mb} "$2" {seconds}',
            sys.executable,
            HOG,
            str(file),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
