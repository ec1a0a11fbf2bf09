"""A tiny fake cgroup2 tree: directories with the control files the plugins read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from oomd.plugin import PluginEnv

MakeCgroup = Callable[..., Path]


@pytest.fixture
def cgroup_fs(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu io memory pids\n")
    return root


@pytest.fixture
def env(cgroup_fs: Path) -> PluginEnv:
    return PluginEnv(cgroup_fs=str(cgroup_fs))


@pytest.fixture
def make_cgroup(cgroup_fs: Path) -> MakeCgroup:
    """``make_cgroup("workload.slice/a.service", current=..., max=..., procs=[...])``"""

    def make(
        rel: str, current: int = 0, max: int | None = None, procs: tuple[int, ...] = ()
    ) -> Path:
        path = cgroup_fs / rel
        path.mkdir(parents=True, exist_ok=True)
        (path / "cgroup.controllers").write_text("memory pids\n")
        (path / "memory.current").write_text(f"{current}\n")
        (path / "memory.max").write_text("max\n" if max is None else f"{max}\n")
        (path / "memory.stat").write_text("anon 4096\nfile 0\n")
        (path / "cgroup.procs").write_text("".join(f"{pid}\n" for pid in procs))
        return path

    return make
