"""Pattern resolution never leaves the cgroup filesystem (issue 12, item 7): for any
pattern the config accepts, on a tree holding symlinks that lead out of it, every
result is a real directory inside the mount, spelled without "." or ".."."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oomd.cgroup.path import parse_pattern_list

components = st.sampled_from(["a", "b", "*", "?", "[ab]", "..", ".", "out", "up", ".*", "{a}"])
patterns = st.lists(components, min_size=0, max_size=6).map("/".join)


@pytest.fixture(scope="module")
def fs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("confine")
    (base / "outside" / "a" / "b").mkdir(parents=True)
    root = base / "cgroup"
    for rel in ("a/b", "a/a", "b/a/b", ".hidden/a"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    os.symlink(base / "outside", root / "out")
    os.symlink(base, root / "a" / "up")
    os.symlink("..", root / "b" / "up")
    return root


@given(text=patterns)
def test_no_pattern_resolves_outside_the_mount(fs: Path, text: str) -> None:
    try:
        parsed = parse_pattern_list(str(fs), text)
    except ValueError:
        return  # rejected when the config is read
    mount = os.path.realpath(fs)
    for pattern in parsed:
        for path, inode in pattern.resolve():
            assert os.path.realpath(path.absolute) == path.absolute
            assert path.absolute == mount or path.absolute.startswith(mount + "/")
            assert not {".", ".."} & set(path.parts)
            st_ = os.lstat(path.absolute)
            assert st_.st_ino == inode
