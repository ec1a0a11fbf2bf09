"""A flight-recorder incident of a real kill, kept as a fixture: replayed with the
config the daemon ran, it kills the recorded victim at the recorded tick.

``data/real-kernel-kill.oomd-trace`` is what the qemu guest of the real-kernel suite
recorded (tests/e2e/test_kill.py, first scenario: a hog past workload.slice's
memory.high under real PSI, killed by kill_by_memory_size_or_growth), and
``data/real-kernel-kill.json`` the daemon's config; tests/test_e2e_vm.py runs the same
check on a fresh recording every time the guest runs. To refresh the fixture, copy
``record/incident.oomd-trace`` and ``record/oomd.json`` from that test's guest out
dir."""

from __future__ import annotations

from pathlib import Path

from oomd.trace import Trace
from tests.record.real_kernel import assert_replays_its_kill

DATA = Path(__file__).parent / "data"
TRACE = DATA / "real-kernel-kill.oomd-trace"
CONFIG = DATA / "real-kernel-kill.json"


def test_the_real_kernel_incident_replays_to_its_recorded_kill() -> None:
    result = assert_replays_its_kill(str(TRACE), str(CONFIG))
    [kill] = result.kills
    assert kill.victim == "workload.slice/hog.service"
    assert kill.ranking, "the kill plugin's ranking is shown with the kill"


def test_the_fixture_is_small_and_real() -> None:
    assert TRACE.stat().st_size <= 128 * 1024
    trace = Trace(str(TRACE))
    try:
        assert trace.meta["cgroup_fs"] == "/sys/fs/cgroup" and trace.meta["complete"] == "1"
        # Real PSI: the hog's parent came under memory pressure before the kill.
        files = {
            (trace.cgroups[c][0] if c is not None else None, f) for c, f, _ in trace.series.values()
        }
        assert ("workload.slice", "memory.pressure") in files
        assert (None, "meminfo") in files
    finally:
        trace.close()
