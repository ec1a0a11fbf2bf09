"""The daemon's own files and signals against a hostile or careless host (issue 12):
the runtime lock never follows a symlink, SIGHUP re-reads the config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oomd.daemon import LockError, acquire_lock


def test_the_runtime_lock_never_follows_a_symlink(tmp_path: Path) -> None:
    """A symlink planted in a user-owned runtime dir truncated the root file it named."""
    victim = tmp_path / "precious"
    victim.write_text("root's data\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "oomd.lock").symlink_to(victim)
    with pytest.raises(LockError, match=r"Failed to open lock file=.*oomd\.lock"):
        acquire_lock(str(run))
    assert victim.read_text() == "root's data\n"
    os.unlink(run / "oomd.lock")
    os.close(acquire_lock(str(run)))
