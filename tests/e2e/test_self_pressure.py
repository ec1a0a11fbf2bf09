"""The daemon under its own memory pressure: a hog grows in the daemon's parent slice
(memory.high/max with swap), so the daemon's own allocations are throttled and
reclaimed with it. It must keep ticking and kill the hog, and again a second one.

Runs only inside the oomdvm guest (see tests/test_e2e_vm.py)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.e2e.guest import MiB, parse_kill_line, pressure_total, record, requires_guest, scenario

pytestmark = requires_guest

KILL_TIMEOUT = 45


def test_daemon_under_its_own_memory_pressure_keeps_ticking_and_acts(tmp_path: Path) -> None:
    config = {
        "rulesets": [
            {
                "name": "protect the system",
                "detectors": [
                    [
                        "system.slice under memory pressure",
                        {
                            "name": "pressure_above",
                            "args": {
                                "cgroup": "system.slice",
                                "resource": "memory",
                                "threshold": "5",
                                "duration": "1",
                            },
                        },
                    ]
                ],
                "actions": [
                    {
                        "name": "kill_by_memory_size_or_growth",
                        "args": {"cgroup": "system.slice/*", "post_action_delay": "2"},
                    }
                ],
            }
        ]
    }
    with scenario(tmp_path) as s:
        system = s.cgroup(
            "system.slice", {"memory.high": str(150 * MiB), "memory.max": str(250 * MiB)}
        )
        daemon = s.oomd(config, cgroup="system.slice/oomd.service")
        daemon.wait_running()
        times = []
        for n in (1, 2):
            t0 = time.monotonic()
            hog = s.worker(
                f"hog{n}", s.cgroup(f"system.slice/hog{n}.service"), 500 * MiB, step_mb=8
            )
            died = hog.wait_death(KILL_TIMEOUT)
            assert died is not None, f"hog {n} survived {KILL_TIMEOUT}s:\n{s.explain(daemon)}"
            assert hog.proc.returncode == -signal.SIGKILL
            times.append(round(died - t0, 2))
            daemon.wait_kill_lines(n)
            assert daemon.proc.poll() is None, daemon.stderr_tail()
        kills = [parse_kill_line(line)["cgroup"] for line in daemon.wait_kill_lines(2)]
        assert kills == ["system.slice/hog1.service", "system.slice/hog2.service"]
        assert "Error during tick" not in daemon.stderr()
        own_stall_us = pressure_total(daemon.cgroup / "memory.pressure")
        s.assert_no_kernel_oom_kill(system)
        assert daemon.stop() in (-signal.SIGTERM, 128 + signal.SIGTERM)
        assert "Received signal 15. Exiting!" in daemon.stderr()
        record(
            "daemon_under_own_pressure",
            s.started,
            hog1_start_to_death_s=times[0],
            hog2_start_to_death_s=times[1],
            daemon_memory_stall_ms=own_stall_us // 1000,
        )
