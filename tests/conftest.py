"""Fixtures shared by the whole suite: fake trees, fake /proc, spawned processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from oomd import log
from tests.support.daemon import Daemons
from tests.support.harness import Harness
from tests.support.procs import Spawner
from tests.support.tree import FakeProc, FakeTree


@pytest.fixture(autouse=True)
def _forget_third_party_plugins() -> Iterator[None]:
    """Third-party plugins registered by a test (``oomd -l``, ``--plugin-dir``) are
    forgotten after it."""
    yield
    from oomd.plugins import registry

    registry.reset()


@pytest.fixture
def tree(tmp_path: Path) -> FakeTree:
    return FakeTree(tmp_path / "cgroup")


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc")


@pytest.fixture
def spawner() -> Iterator[Spawner]:
    s = Spawner()
    yield s
    s.cleanup()


@pytest.fixture
def oolog(tmp_path: Path) -> Iterator[Path]:
    """OLOG output captured to a file (read it with ``.read_text()``)."""
    path = tmp_path / "olog.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    log.set_output_fd(fd)
    yield path
    log.set_output_fd(2)
    os.close(fd)


@pytest.fixture
def harness(tree: FakeTree, proc: FakeProc) -> Harness:
    return Harness(tree, proc)


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    """Starts real daemons (``daemons.start(tree, workdir, *args)``); kills them after."""
    started = Daemons()
    yield started
    started.stop_all()
