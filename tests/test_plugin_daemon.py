"""Third-party plugins in the real daemon against a fake tree: the example package
(installed in the venv, found through its entry points) protects a workload while
broken plugins from a ``--plugin-dir`` raise, hang for a tick and have bad args in
a drop-in - none of which stops the daemon or the other rulesets."""

from __future__ import annotations

import json
import os
import re
import signal
import textwrap
from pathlib import Path

from tests.support.daemon import Daemons, run_oomd
from tests.support.procs import Spawner
from tests.support.tree import FakeTree

BROKEN_PLUGINS = """
import time

from oomd.plugin import Action, Detector, OomdContext, PluginRet


class RaisesAlways(Detector):
    name = "raises_always"

    def detect(self, ctx: OomdContext) -> bool:
        raise RuntimeError("detector bug")


class HangsOnce(Detector):
    '''Takes 2.5 s (two and a half ticks) on its first run.'''

    name = "hangs_once"
    runs = 0

    def detect(self, ctx: OomdContext) -> bool:
        self.runs += 1
        if self.runs == 1:
            time.sleep(2.5)
        return False


class BrokenAction(Action):
    name = "broken_action"

    def run(self, ctx: OomdContext) -> PluginRet:
        raise OSError("action bug")
"""


def kill_memory(cgroup: str) -> dict[str, object]:
    return {"name": "kill_by_memory_size_or_growth", "args": {"cgroup": cgroup}}


CONFIG = {
    "rulesets": [
        {
            # Its only detector raises: the group must not fire (so nothing is killed).
            "name": "broken detector",
            "detectors": [["always raises", {"name": "raises_always"}]],
            "actions": [kill_memory("victims.slice/*")],
        },
        {
            # Its first action raises: the chain ends there (STOP), no kill.
            "name": "broken action",
            "detectors": [["always", {"name": "continue"}]],
            "actions": [{"name": "broken_action"}, kill_memory("victims.slice/*")],
        },
        {
            "name": "slow",
            "drop-in": {"detectors": True},
            "detectors": [["hangs", {"name": "hangs_once"}]],
            "actions": [{"name": "continue"}],
        },
        {
            "name": "protect workload",
            "detectors": [
                [
                    "workload near its limit",
                    {
                        "name": "near_memory_limit",
                        "args": {"cgroup": "workload.slice", "percent": "90"},
                    },
                ]
            ],
            "actions": [{"name": "kill_by_process_count", "args": {"cgroup": "workload.slice/*"}}],
        },
    ]
}

#: A drop-in for "slow" whose plugin has an out-of-range arg: refused, rules unchanged.
BAD_DROPIN = {
    "rulesets": [
        {
            "name": "slow",
            "detectors": [
                [
                    "bad",
                    {
                        "name": "near_memory_limit",
                        "args": {"cgroup": "workload.slice", "percent": "500"},
                    },
                ]
            ],
        }
    ]
}


def private_dir(path: Path, files: dict[str, str], mode: int = 0o755) -> Path:
    path.mkdir()
    for name, text in files.items():
        (path / name).write_text(text)
        (path / name).chmod(0o644)
    path.chmod(mode)
    return path


def test_example_plugins_protect_the_workload_while_broken_plugins_cannot_stop_anything(
    tree: FakeTree, tmp_path: Path, spawner: Spawner, daemons: Daemons
) -> None:
    many = [spawner.sleeper() for _ in range(3)]
    few = spawner.sleeper()
    innocent = spawner.sleeper()
    tree.cgroup("workload.slice", current=950 << 20, max=1 << 30)
    tree.cgroup(
        "workload.slice/many.service",
        current=100 << 20,
        procs=[p.pid for p in many],
        stat={"anon": 1},
    )
    tree.cgroup("workload.slice/few.service", current=800 << 20, procs=[few.pid], stat={"anon": 1})
    tree.cgroup(
        "victims.slice/innocent.service",
        current=2 << 30,
        procs=[innocent.pid],
        stat={"anon": 1},
    )
    plugins = private_dir(tmp_path / "plugins", {"broken.py": textwrap.dedent(BROKEN_PLUGINS)})
    dropins = private_dir(tmp_path / "dropins", {"bad.json": json.dumps(BAD_DROPIN)})
    config = tmp_path / "oomd.json"
    config.write_text(json.dumps(CONFIG))
    run_dir = tmp_path / "run"
    daemon = daemons.start(
        tree.root,
        tmp_path,
        *("-i", "1", "-D", str(run_dir), "-C", str(config)),
        *("--plugin-dir", str(plugins), "-w", str(dropins)),
    )

    def kills() -> list[str]:
        return [line for line in daemon.kmsg() if line.startswith("oomd kill:")]

    assert daemon.wait_for(lambda: bool(kills()), timeout=30), daemon.stderr()
    [line] = kills()
    assert re.fullmatch(
        r"oomd kill: [0-9.]+ [0-9.]+ [0-9.]+ workload.slice/many.service 104857600 "
        r"ruleset:\[protect workload\] detectorgroup:\[workload near its limit\] "
        r"killer:kill_by_process_count v2",
        line,
    ), line
    assert all(spawner.is_dead(p) for p in many)
    assert not spawner.is_dead(few, timeout=0.3)
    assert not spawner.is_dead(innocent, timeout=0.1)

    # The daemon keeps ticking: the broken plugins fail again on later ticks.
    def failures() -> int:
        return daemon.stderr().count("Plugin=raises_always run() (Ruleset=broken detector)")

    seen = failures()
    assert daemon.wait_for(lambda: failures() >= seen + 2, timeout=10), daemon.stderr()
    assert daemon.proc.poll() is None
    assert not spawner.is_dead(innocent, timeout=0.1)

    err = daemon.stderr()
    assert (
        "Using third-party plugin near_memory_limit (entry point: oomd-example-plugins 0.1.0, "
        "oomd_example_plugins.near_limit:NearMemoryLimit)" in err
    )
    assert f"Using third-party plugin raises_always (plugin dir: {plugins}/broken.py)" in err
    assert (
        "Plugin=raises_always run() (Ruleset=broken detector) raised RuntimeError: detector bug; "
        "treating as CONTINUE" in err
    )
    assert (
        "Plugin=broken_action run() (Ruleset=broken action) raised OSError: action bug; "
        "treating as STOP" in err
    )
    assert re.search(r"Plugin=hangs_once run\(\) \(Ruleset=slow\) took 2\.[0-9]+ s", err), err
    assert 'arg "percent": must be between 1 and 100, not 500' in err
    assert "Failed to inject drop in config=bad.json into engine; the running rules are" in err

    dump = run_oomd("-d", "-D", str(run_dir))
    assert dump.returncode == 0, dump.stderr
    stats = json.loads(dump.stdout)
    assert stats["oomd.kills"] == 1
    assert stats["oomd.plugin_errors.raises_always"] >= 3
    assert stats["oomd.plugin_errors.broken_action"] >= 1
    assert stats["oomd.plugin_slow_runs.hangs_once"] == 1
    assert stats["oomd.plugin_errors"] == (
        stats["oomd.plugin_errors.raises_always"] + stats["oomd.plugin_errors.broken_action"]
    )

    status = daemon.stop(signal.SIGTERM)
    assert status in (-signal.SIGTERM, 128 + signal.SIGTERM)


def test_daemon_refuses_to_start_with_an_unsafe_plugin_dir(
    tree: FakeTree, tmp_path: Path, daemons: Daemons
) -> None:
    plugins = private_dir(tmp_path / "plugins", {"broken.py": BROKEN_PLUGINS}, mode=0o777)
    config = tmp_path / "oomd.json"
    config.write_text(json.dumps(CONFIG))
    daemon = daemons.start(
        tree.root,
        tmp_path,
        *("-D", str(tmp_path / "run"), "-C", str(config), "--plugin-dir", str(plugins)),
    )
    assert daemon.proc.wait(30) == 3
    err = daemon.stderr()
    assert f"refusing plugin dir {plugins}: writable by its group or others (mode 0777)" in err
    assert "Third-party plugins failed to load" in err
    assert not os.path.exists(tmp_path / "run" / "oomd.lock")
