"""Real cgroups for the tests that need the kernel: created under the host's cgroup2
mount with a unique name, removed afterwards with everything below them."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from oomd.cgroup import mount


@contextmanager
def real_cgroup(prefix: str = "oomd-test") -> Iterator[Path]:
    """A fresh cgroup under the first cgroup2 mount (skips the test, saying why,
    where none can be created)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create cgroups")
    mounts = mount.cgroup2_mounts()
    if not mounts:
        pytest.skip("no cgroup2 filesystem mounted")
    base = Path(mounts[0]) / f"{prefix}-{uuid.uuid4().hex[:8]}"
    try:
        base.mkdir()
    except OSError as e:
        pytest.skip(f"cannot create a cgroup under {mounts[0]}: {e.strerror}")
    try:
        yield base
    finally:
        for d in [*sorted(base.rglob("*"), key=lambda p: len(p.parts), reverse=True), base]:
            if not d.is_dir():
                continue
            for _ in range(50):  # exiting processes leave the cgroup asynchronously
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)


def move(pid: int, cgroup: Path) -> None:
    """Move a process the test spawned into ``cgroup``."""
    (cgroup / "cgroup.procs").write_text(str(pid))
