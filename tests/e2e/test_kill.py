"""The real oomd against real memory pressure: a hog grows past its parent's
memory.high/memory.max with swap on, and the daemon kills the right cgroup (or, dry,
only says it would), before the kernel OOM killer has anything to do.

Runs only inside the oomdvm guest (see tests/test_e2e_vm.py)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.guest import (
    Daemon,
    MiB,
    Scenario,
    Worker,
    missing_plugins,
    parse_kill_line,
    record,
    requires_guest,
    scenario,
    xattr,
)

pytestmark = requires_guest

HIGH, MAX = 200 * MiB, 300 * MiB
HOG = 600 * MiB
GOOD = 16 * MiB
KILL_TIMEOUT = 45
#: Upstream's kill uuid: two random 64-bit numbers in unpadded lowercase hex.
KILL_UUID = re.compile(rb"[0-9a-f]{2,32}")

RULESET = "protect the workload"
GROUP = "workload.slice under memory pressure"
PRESSURE = {
    "name": "pressure_above",
    "args": {"cgroup": "workload.slice", "resource": "memory", "threshold": "5", "duration": "1"},
}


def config(action: dict[str, Any], detector: dict[str, Any] = PRESSURE) -> dict[str, Any]:
    return {
        "rulesets": [
            {"name": RULESET, "detectors": [[GROUP, detector]], "actions": [action]},
        ]
    }


def memory_kill(**args: str) -> dict[str, Any]:
    return {
        "name": "kill_by_memory_size_or_growth",
        "args": {"cgroup": "workload.slice/*", "post_action_delay": "60", **args},
    }


def workload(s: Scenario) -> Path:
    return s.cgroup("workload.slice", {"memory.high": str(HIGH), "memory.max": str(MAX)})


def start(
    s: Scenario, cfg: dict[str, Any], *workers: tuple[str, int]
) -> tuple[Daemon, list[Worker]]:
    """The daemon and steady workers ``(name, size)`` in workload.slice/<name>.service,
    all started together and settled."""
    daemon = s.oomd(cfg)
    started = [
        s.worker(name, s.cgroup(f"workload.slice/{name}.service"), size, pause=0.2)
        for name, size in workers
    ]
    for worker, (_, size) in zip(started, workers, strict=True):
        s.wait_allocated(worker, size)
    daemon.wait_running()
    return daemon, started


def assert_keeps_working(worker: Worker) -> None:
    before = worker.beat()[0]
    deadline = time.monotonic() + 10
    while worker.beat()[0] <= before + 2:
        assert worker.alive(), f"{worker.name} died ({worker.proc.returncode})"
        assert time.monotonic() < deadline, f"{worker.name} stopped working"
        time.sleep(0.2)


def grow_hog(s: Scenario, name: str = "hog.service", parent: str = "workload.slice") -> Worker:
    """The hog: grows 8 MiB per loop to 600 MiB and keeps touching it all; marks the
    moment it crosses the parent's memory.high."""
    return s.worker("hog", s.cgroup(f"{parent}/{name}"), HOG, step_mb=8, mark=HIGH)


def hog_killed(s: Scenario, daemon: Daemon, hog: Worker, killer: str, name: str, t0: float) -> None:
    """The hog died by SIGKILL from the daemon: check the kill line, the xattrs and the
    kernel's counters, and record how long it took."""
    died = hog.wait_death(KILL_TIMEOUT)
    assert died is not None, f"the hog survived {KILL_TIMEOUT}s:\n{s.explain(daemon)}"
    assert hog.proc.returncode == -signal.SIGKILL
    lines = daemon.wait_kill_lines(1)
    kill = parse_kill_line(lines[0])
    assert kill["cgroup"] == "workload.slice/hog.service"
    assert (kill["ruleset"], kill["group"], kill["killer"], kill["dry"]) == (
        RULESET,
        GROUP,
        killer,
        "",
    )
    assert int(kill["usage"]) > 0
    assert xattr(hog.cgroup, "trusted.oomd_ooms") == b"1"
    assert int(xattr(hog.cgroup, "trusted.oomd_kill") or b"0") >= 1
    assert KILL_UUID.fullmatch(xattr(hog.cgroup, "trusted.oomd_kill_uuid") or b"")
    crossed = hog.marked_at()
    assert crossed is not None, "the hog was killed before it crossed memory.high"
    s.assert_no_kernel_oom_kill(s.cgroups[0], hog.cgroup)
    assert daemon.proc.poll() is None, daemon.stderr_tail()
    record(
        name,
        s.started,
        crossing_to_death_s=round(died - crossed, 2),
        hog_start_to_death_s=round(died - t0, 2),
        pressure_at_kill=kill["p10"],
        usage_at_kill_mib=int(kill["usage"]) >> 20,
    )


#: The flight recorder's window in the first scenario (a small incident file: it is
#: brought back to the host, replayed there, and kept as tests/record/data's fixture).
RECORD_KEEP = 6


def test_hog_past_memory_high_is_killed_and_good_service_survives(tmp_path: Path) -> None:
    record_dir = tmp_path / "rec"
    flight = ["--record-dir", str(record_dir), "--record-keep", str(RECORD_KEEP)]
    with scenario(tmp_path) as s:
        wl = workload(s)
        daemon = s.oomd(config(memory_kill()), args=flight)
        good = s.worker("good", s.cgroup("workload.slice/good.service"), GOOD, pause=0.2)
        s.wait_allocated(good, GOOD)
        daemon.wait_running()
        t0 = time.monotonic()
        hog = grow_hog(s)
        hog_killed(s, daemon, hog, "kill_by_memory_size_or_growth", "memory_size_or_growth", t0)
        assert_keeps_working(good)
        assert xattr(good.cgroup, "trusted.oomd_ooms") is None
        assert xattr(wl, "trusted.oomd_ooms") is None
        # The flight recorder wrote the kill's incident, named after its uuid, once
        # its tail was recorded; the host replays it (tests/test_e2e_vm.py).
        uuid = (xattr(hog.cgroup, "trusted.oomd_kill_uuid") or b"").decode()
        incident = record_dir / f"{uuid}.oomd-trace"
        deadline = time.monotonic() + RECORD_KEEP + 15
        while not incident.exists():
            assert time.monotonic() < deadline, f"no incident file:\n{daemon.stderr_tail()}"
            time.sleep(0.2)
        out = os.environ.get("OOMDVM_OUT")
        if out:
            keep = Path(out) / "record"
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(incident, keep / "incident.oomd-trace")
            shutil.copyfile(daemon.config_path, keep / "oomd.json")
            (keep / "kill-line").write_text(daemon.wait_kill_lines(1)[0])
        record("flight_recorder", s.started, incident_bytes=incident.stat().st_size)


SWAP_PLUGINS = ("swap_free", "kill_by_swap_usage")


@pytest.mark.skipif(
    bool(missing_plugins(*SWAP_PLUGINS)),
    reason=f"oomd -l does not list {', '.join(missing_plugins(*SWAP_PLUGINS))} yet",
)
def test_swap_hog_is_killed_when_swap_runs_low(tmp_path: Path) -> None:
    # 2 GiB of swap: below 90% free once the hog has pushed ~200 MiB out.
    swap_free = {"name": "swap_free", "args": {"threshold_pct": "90"}}
    action = {
        "name": "kill_by_swap_usage",
        "args": {"cgroup": "workload.slice/*", "post_action_delay": "60"},
    }
    with scenario(tmp_path) as s:
        workload(s)
        daemon, [good] = start(s, config(action, swap_free), ("good", GOOD))
        t0 = time.monotonic()
        hog = grow_hog(s)
        hog_killed(s, daemon, hog, "kill_by_swap_usage", "swap_usage", t0)
        assert_keeps_working(good)


def test_recursive_kill_takes_the_whole_oom_group(tmp_path: Path) -> None:
    with scenario(tmp_path) as s:
        workload(s)
        batch = s.cgroup("workload.slice/batch.slice", {"memory.oom.group": "1"})
        daemon = s.oomd(config(memory_kill(recursive="true")))
        helper = s.worker("helper", s.cgroup("workload.slice/batch.slice/helper.service"), GOOD)
        good = s.worker("good", s.cgroup("workload.slice/other.slice/good.service"), GOOD)
        s.wait_allocated(helper, GOOD)
        s.wait_allocated(good, GOOD)
        daemon.wait_running()
        t0 = time.monotonic()
        hog = grow_hog(s, parent="workload.slice/batch.slice")
        died = hog.wait_death(KILL_TIMEOUT)
        assert died is not None, f"the hog survived {KILL_TIMEOUT}s:\n{s.explain(daemon)}"
        # cgroup.kill on the group: everything in it dies together.
        assert helper.wait_death(5) is not None, "the hog's oom.group sibling survived"
        assert (hog.proc.returncode, helper.proc.returncode) == (-signal.SIGKILL,) * 2
        lines = daemon.wait_kill_lines(1)
        assert parse_kill_line(lines[0])["cgroup"] == "workload.slice/batch.slice"
        assert (xattr(batch, "trusted.oomd_ooms"), xattr(batch, "trusted.oomd_kill")) == (
            b"1",
            b"2",
        )
        assert xattr(hog.cgroup, "trusted.oomd_ooms") is None
        assert_keeps_working(good)
        s.assert_no_kernel_oom_kill(s.cgroups[0])
        record("recursive_oom_group", s.started, hog_start_to_death_s=round(died - t0, 2))


def test_avoided_biggest_cgroup_is_spared_for_the_next_best(tmp_path: Path) -> None:
    with scenario(tmp_path) as s:
        workload(s)
        daemon, [medium, good] = start(
            s, config(memory_kill()), ("medium", 100 * MiB), ("good", GOOD)
        )
        # The hog will be by far the biggest: only the xattr spares it.
        os.setxattr(s.cgroup("workload.slice/hog.service"), "trusted.oomd_avoid", b"1")
        t0 = time.monotonic()
        hog = grow_hog(s)
        died = medium.wait_death(KILL_TIMEOUT)
        assert died is not None, f"nothing was killed in {KILL_TIMEOUT}s:\n{s.explain(daemon)}"
        assert medium.proc.returncode == -signal.SIGKILL
        lines = daemon.wait_kill_lines(1)
        assert parse_kill_line(lines[0])["cgroup"] == "workload.slice/medium.service"
        assert hog.alive(), "the avoided hog was killed"
        assert xattr(hog.cgroup, "trusted.oomd_ooms") is None
        assert_keeps_working(good)
        s.assert_no_kernel_oom_kill(s.cgroups[0])
        record("avoid_xattr", s.started, hog_start_to_next_best_death_s=round(died - t0, 2))


def test_dry_run_kills_nothing_and_says_so(tmp_path: Path) -> None:
    with scenario(tmp_path) as s:
        workload(s)
        daemon, [good] = start(s, config(memory_kill(dry="true")), ("good", GOOD))
        t0 = time.monotonic()
        hog = grow_hog(s)
        [line] = daemon.wait_kill_lines(1, KILL_TIMEOUT)
        said = time.monotonic()
        kill = parse_kill_line(line)
        assert (kill["cgroup"], kill["dry"], kill["killer"]) == (
            "workload.slice/hog.service",
            "(dry)",
            "kill_by_memory_size_or_growth",
        )
        assert "OOMD: In dry-run mode; would have tried to kill" in daemon.stderr()
        time.sleep(2)
        assert hog.alive() and good.alive(), "dry run killed something"
        assert xattr(hog.cgroup, "trusted.oomd_ooms") is None
        s.assert_no_kernel_oom_kill(s.cgroups[0])
        record("dry_run", s.started, hog_start_to_dry_line_s=round(said - t0, 2))
