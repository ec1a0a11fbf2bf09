"""senpai against a real workload: memory.high follows the workload's memory down
once it shrinks, without a kill.

Runs only inside the oomdvm guest (see tests/test_e2e_vm.py)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.e2e.guest import MiB, missing_plugins, read, record, requires_guest, scenario

pytestmark = [
    requires_guest,
    pytest.mark.skipif(bool(missing_plugins("senpai")), reason="oomd -l does not list senpai yet"),
]


def memory_high(cgroup: Path) -> float:
    value = read(cgroup / "memory.high")
    return float("inf") if value == "max" else int(value)


def test_senpai_memory_high_follows_the_workload_down(tmp_path: Path) -> None:
    config = {
        "rulesets": [
            {
                "name": "senpai",
                "detectors": [["always", {"name": "continue", "args": {}}]],
                "actions": [
                    {
                        "name": "senpai",
                        "args": {
                            "cgroup": "workload.slice/app.service",
                            "limit_min_bytes": str(16 * MiB),
                            "interval": "1",
                            "max_probe": "0.2",
                        },
                    }
                ],
            }
        ]
    }
    with scenario(tmp_path) as s:
        app_cg = s.cgroup("workload.slice/app.service")
        app = s.worker("app", app_cg, 150 * MiB, pause=0.2, shrink=40 * MiB)
        s.wait_allocated(app, 150 * MiB)
        daemon = s.oomd(config)
        daemon.wait_running()
        daemon.wait_for(
            lambda: memory_high(app_cg) < float("inf"), 30, "senpai setting memory.high"
        )
        start_high = memory_high(app_cg)
        app.proc.send_signal(signal.SIGUSR1)
        t0 = time.monotonic()
        daemon.wait_for(lambda: memory_high(app_cg) < 100 * MiB, 60, "memory.high below 100 MiB")
        followed = time.monotonic() - t0
        time.sleep(2)
        assert app.alive(), "senpai's workload died"
        assert daemon.kill_lines() == []
        s.assert_no_kernel_oom_kill(app_cg)
        record(
            "senpai",
            s.started,
            memory_high_start_mib=int(start_high) >> 20,
            memory_high_end_mib=int(memory_high(app_cg)) >> 20,
            shrink_to_below_100mib_s=round(followed, 2),
        )
