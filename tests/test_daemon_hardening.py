"""The daemon's own files and signals against a hostile or careless host (issue 12):
the runtime lock never follows a symlink, SIGHUP re-reads the config."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from oomd.daemon import LockError, acquire_lock
from oomd.observe import request_status
from tests.support.daemon import Daemons
from tests.support.tree import FakeTree
from tests.test_daemon import CONFIG, start


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


def test_sighup_reloads_the_config_and_a_bad_one_keeps_the_running_rules(
    tree: FakeTree, tmp_path: Path, daemons: Daemons
) -> None:
    """Issue 12: SIGHUP killed the daemon silently, leaving its stats socket behind."""
    tree.cgroup("workload.slice/a", current=1 << 20, stat={"anon": 1})
    daemon = start(daemons, tree, tmp_path)
    assert daemon.wait_for(lambda: "Running oomd" in daemon.stderr())
    config = tmp_path / "oomd.json"
    renamed = json.loads(json.dumps(CONFIG))
    renamed["rulesets"][0]["name"] = "reloaded"
    config.write_text(json.dumps(renamed))
    daemon.proc.send_signal(signal.SIGHUP)
    assert daemon.wait_for(lambda: f"Reloaded conf_file={config}" in daemon.stderr()), (
        daemon.stderr()
    )
    # The new rules are described right after that line (written separately).
    assert daemon.wait_for(lambda: 'ruleset "reloaded"' in daemon.stderr()), daemon.stderr()
    # oomd status follows the reloaded rules.
    status = request_status(str(tmp_path / "run" / "oomd-status.socket"))
    assert [r["name"] for r in status["rulesets"]] == ["reloaded"]
    config.write_text('{"rulesets": [,]}')
    daemon.proc.send_signal(signal.SIGHUP)
    assert daemon.wait_for(lambda: "keeping the running rules" in daemon.stderr())
    assert f"{config}:1:" in daemon.stderr()
    assert daemon.proc.poll() is None
    assert daemon.stop() == -signal.SIGTERM
