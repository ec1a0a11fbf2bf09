"""The check a real-kernel incident must pass: replayed on this host with the config
the daemon ran, the same victim is killed at the same tick.

Used on the incident the qemu guest just recorded (tests/test_e2e_vm.py) and on the
one kept as a fixture (tests/record/data, tests/record/test_real_kernel.py)."""

from __future__ import annotations

from oomd.replay import ReplayResult, run_replay
from oomd.trace import Trace


def assert_replays_its_kill(trace_path: str, config_path: str) -> ReplayResult:
    trace = Trace(trace_path)
    try:
        assert trace.meta["source"] == "flight recorder" and trace.meta["dry_run"] == "0"
        [event] = trace.events
        assert event.kind == "kill" and event.cgroup, event
        result = run_replay(trace, config_path)
    finally:
        trace.close()
    assert not result.errors, result.errors
    [kill] = result.kills
    assert (kill.victim, kill.tick) == (event.cgroup, event.tick), (kill, event)
    # The replay's kill line is the daemon's, marked dry (the recorded one went to kmsg).
    assert kill.line == event.line.replace("killer:", "killer:(dry)"), (kill.line, event.line)
    return result
