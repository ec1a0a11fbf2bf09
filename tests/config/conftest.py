"""Fixtures for the config pipeline tests: a plugin environment rooted in a temporary
directory, so compiling never looks at the host's cgroups."""

from __future__ import annotations

from pathlib import Path

import pytest

from oomd.engine.plugin import PluginEnv


@pytest.fixture
def env(tmp_path: Path) -> PluginEnv:
    cgroup_fs = tmp_path / "cgroup"
    cgroup_fs.mkdir()
    return PluginEnv(cgroup_fs=str(cgroup_fs))
