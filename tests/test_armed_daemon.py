"""Issue 13, end to end: the daemon never runs silently disarmed.

* On a fake tree where nothing can be killed, the daemon logs an error line and keeps
  ticking (and re-checking): once the missing slice appears it says it is armed.
* On this host's real cgroup2 mount (a cgroup the test creates, a process it spawns),
  ``oomd --dry-run`` with the built-in policy says what it watches and may kill, and
  the same fitted policy logs a would-be kill of the test's cgroup. PSI cannot be made
  to cross the policy's real thresholds (60% for 30 s) reliably in a test, so that
  second run takes the policy exactly as fitted to the host (``adapt_policy``) and
  only lowers its pressure thresholds to -1 and durations to 0, which any pressure
  reading crosses: deterministic, and everything else - plugins, targets, kill path
  in dry-run mode - is what the built-in policy runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from oomd.cgroup import mount
from oomd.config.default_policy import DEFAULT_POLICY_NAME, DEFAULT_POLICY_TEXT
from oomd.config.host_policy import HostFacts, adapt_policy, to_json
from oomd.config.parser import parse_config
from tests.support.daemon import Daemon, our_oomd
from tests.support.procs import Spawner
from tests.support.real_cgroups import move, real_cgroup
from tests.support.tree import FakeTree

CONFIG = {
    "rulesets": [
        {
            "name": "r",
            "detectors": [
                [
                    "g",
                    {
                        "name": "pressure_above",
                        "args": {
                            "cgroup": "workload.slice",
                            "resource": "memory",
                            "threshold": "50",
                            "duration": "5",
                        },
                    },
                ]
            ],
            "actions": [
                {
                    "name": "kill_by_pressure",
                    "args": {"cgroup": "workload.slice/*", "resource": "memory"},
                }
            ],
        }
    ]
}


def test_daemon_with_nothing_to_kill_logs_an_error_and_keeps_ticking(
    tmp_path: Path, tree: FakeTree
) -> None:
    config = tmp_path / "oomd.json"
    config.write_text(json.dumps(CONFIG))
    d = Daemon(
        [*our_oomd(), "-C", str(config), "-i", "1", "-D", str(tmp_path / "run")],
        tree.root,
        tmp_path,
    )
    try:
        error = (
            "Error: no ruleset can ever act on this host: every ruleset is DISARMED "
            "(re-checked every tick; repeated every 60s)"
        )
        assert d.wait_for(lambda: error in d.stderr()), d.stderr()
        assert (
            'ruleset "r": DISARMED because nothing to kill: workload.slice/* '
            "(workload.slice does not exist)"
        ) in d.stderr()
        assert d.proc.poll() is None, d.stderr()
        # The slice appears later: the next tick's re-check says so.
        tree.cgroup("workload.slice")
        assert d.wait_for(lambda: "oomd is armed again" in d.stderr()), d.stderr()
        log = d.stderr()
        assert (
            'ruleset "r": armed, watching pressure_above(workload.slice); '
            "may kill workload.slice/* (kill_by_pressure)"
        ) in log
        # Bounded: one error line while it lasted (it repeats only every 60 s).
        assert log.count(error) == 1
    finally:
        assert d.stop() == -signal.SIGTERM  # died by SIGTERM, as upstream


def _start(argv: list[str], workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    stderr = workdir / "stderr"
    with open(stderr, "wb") as f:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=f)
    return proc, stderr


def _wait(proc: subprocess.Popen[bytes], path: Path, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = path.read_text(errors="replace")
        if text in log or proc.poll() is not None:
            return log
        time.sleep(0.05)
    return path.read_text(errors="replace")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # a process this test started, by pid
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_builtin_policy_is_armed_on_this_host_and_would_kill_the_test_cgroup(
    tmp_path: Path, spawner: Spawner
) -> None:
    if os.path.exists("/etc/oomd.json"):
        pytest.skip("/etc/oomd.json exists: oomd would run it, not the built-in policy")
    with real_cgroup("oomd-armed-test") as base:
        victim = base / "victim"
        victim.mkdir()
        child = spawner.sleeper()
        move(child.pid, victim)
        common = [
            "--dry-run",
            "-i",
            "1",
            "-f",
            str(base),
            "--kmsg-override",
            str(tmp_path / "kmsg"),
        ]

        # 1. The built-in policy itself: armed, saying what it watches and may kill.
        proc, stderr = _start([*our_oomd(), *common, "-D", str(tmp_path / "run1")], tmp_path)
        try:
            log = _wait(proc, stderr, "Running oomd")
        finally:
            _stop(proc)
        assert "running the built-in default policy" in log, log
        assert 'ruleset "user session protection": armed, watching pressure_above(' in log, log
        assert "DISARMED" not in log and "Error:" not in log, log

        # 2. The same policy as fitted to this host, thresholds lowered: a would-be kill
        # of the test's cgroup, the only one there is to kill.
        host = HostFacts(str(base), mount.controllers(str(base)))
        ir, _ = adapt_policy(parse_config(DEFAULT_POLICY_TEXT, DEFAULT_POLICY_NAME), host)
        data = to_json(ir)
        for rs in data["rulesets"]:  # type: ignore[attr-defined]
            for group in rs["detectors"]:
                for det in group[1:]:
                    if det["name"] == "pressure_above":
                        det["args"].update(threshold="-1", duration="0")
        config = tmp_path / "fitted.json"
        config.write_text(json.dumps(data))
        proc, stderr = _start(
            [*our_oomd(), *common, "-C", str(config), "-D", str(tmp_path / "run2")], tmp_path
        )
        try:
            log = _wait(proc, stderr, "would have tried to kill")
        finally:
            _stop(proc)
        assert f"OOMD: In dry-run mode; would have tried to kill {victim}" in log, log
        assert child.poll() is None  # dry run: nothing was killed
