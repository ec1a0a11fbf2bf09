"""The kill ladder (issue 17) against real memory pressure: a hog with a SIGTERM
handler that writes a marker file grows past its parent's memory.high; the daemon
sends SIGTERM, the marker is written, and the hog either finishes its shutdown within
the 5 s grace period or is SIGKILLed when it ends. The same hog under plain SIGKILL is
the baseline: each run records how long the hog lived, and how much memory stall
workload.slice accrued, after the first signal (docs/kill-ladder.md).

Runs only inside the oomdvm guest (see tests/test_e2e_vm.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.guest import (
    WORKER,
    Scenario,
    Worker,
    _enter,
    parse_kill_line,
    pressure_total,
    record,
    requires_guest,
    scenario,
)
from tests.e2e.test_kill import GOOD, HIGH, HOG, KILL_TIMEOUT, config, memory_kill, start, workload

pytestmark = requires_guest

GRACE = 5

#: Prepended to the worker: on SIGTERM write the monotonic time to $HOG_MARKER, keep
#: working (a shutdown that still uses its memory) and exit 0 after $HOG_LINGER
#: seconds; a negative linger never exits (it must be SIGKILLed).
HANDLER = r"""
import os as _os, signal as _signal, time as _time
def _term(*_):
    with open(_os.environ["HOG_MARKER"], "w") as f:
        f.write(repr(_time.monotonic()))
    linger = float(_os.environ["HOG_LINGER"])
    if linger >= 0:
        _signal.signal(_signal.SIGALRM, lambda *_: _os._exit(0))
        _signal.setitimer(_signal.ITIMER_REAL, max(linger, 0.001))
_signal.signal(_signal.SIGTERM, _term)
"""


def polite_hog(s: Scenario, linger: float) -> tuple[Worker, Path]:
    cgroup = s.cgroup("workload.slice/hog.service")
    beat, mark_file, marker = (s.workdir / f"hog.{x}" for x in ("beat", "mark", "term"))
    argv = [sys.executable, "-c", HANDLER + WORKER, str(HOG), "8", str(HIGH), "0", "0"]
    proc = subprocess.Popen(
        [*argv, str(beat), str(mark_file)],
        stdin=subprocess.DEVNULL,
        preexec_fn=_enter(cgroup),
        env={"HOG_MARKER": str(marker), "HOG_LINGER": str(linger), "PATH": "/usr/bin:/bin"},
    )
    worker = Worker("hog", proc, cgroup, beat, mark_file)
    s.workers.append(worker)
    return worker, marker


def run(
    tmp_path: Path, name: str, linger: float, ladder: bool
) -> dict[str, float | str | int | None]:
    """One run; returns what it measured."""
    args = {"kill_signal": "SIGTERM", "grace_period": str(GRACE)} if ladder else {}
    with scenario(tmp_path / name) as s:
        wl = workload(s)
        daemon, [good] = start(s, config(memory_kill(**args)), ("good", GOOD))
        hog, marker = polite_hog(s, linger)
        # The first signal: the kill line, written right after SIGTERM (or, for
        # SIGKILL, once the victim is dead).
        first: float | None = None
        stall_at_first = 0
        deadline = time.monotonic() + KILL_TIMEOUT + GRACE
        while hog.alive() and time.monotonic() < deadline:
            if first is None and daemon.kill_lines():
                first, stall_at_first = time.monotonic(), pressure_total(wl / "memory.pressure")
            time.sleep(0.05)
        died = hog.wait_death(1)
        assert died is not None, f"the hog survived:\n{s.explain(daemon)}"
        if first is None:
            first, stall_at_first = died, pressure_total(wl / "memory.pressure")
        stall_us = pressure_total(wl / "memory.pressure") - stall_at_first
        [line] = daemon.wait_kill_lines(1)
        assert parse_kill_line(line)["cgroup"] == "workload.slice/hog.service"
        escalations = [x for x in daemon.kmsg() if x.startswith("oomd escalate:")]
        assert good.alive(), "the good service died"
        assert daemon.proc.poll() is None, daemon.stderr_tail()
        result: dict[str, float | str | int | None] = {
            "returncode": hog.proc.returncode,
            "marker": int(marker.exists()),
            "escalated": len(escalations),
            "signal_to_death_s": round(died - first, 2),
            "stall_after_signal_ms": stall_us // 1000,
            "escalation": escalations[0] if escalations else "",
        }
        record(name, s.started, **{k: v for k, v in result.items() if k != "escalation"})
        return result


def test_a_polite_hog_shuts_down_cleanly_within_its_grace_period(tmp_path: Path) -> None:
    result = run(tmp_path, "ladder_clean_exit", linger=1.0, ladder=True)
    assert result["marker"], "the hog's SIGTERM handler did not run"
    assert result["returncode"] == 0, result
    assert result["escalated"] == 0, result


def test_a_hog_that_outlives_its_grace_period_is_sigkilled(tmp_path: Path) -> None:
    result = run(tmp_path, "ladder_escalated", linger=-1, ladder=True)
    assert result["marker"], "the hog's SIGTERM handler did not run"
    assert result["returncode"] == -signal.SIGKILL, result
    assert result["escalated"] == 1, result
    assert "SIGKILL after" in str(result["escalation"])


def test_the_same_hog_under_plain_sigkill(tmp_path: Path) -> None:
    result = run(tmp_path, "sigkill_baseline", linger=-1, ladder=False)
    assert not result["marker"], "SIGKILL cannot be caught"
    assert result["returncode"] == -signal.SIGKILL, result
