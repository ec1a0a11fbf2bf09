"""The real-kernel end-to-end suite, ``tests/e2e``, run in a throw-away VM.

The host's cgroups cannot give the daemon real memory pressure (a hybrid hierarchy's
cgroup2 mount has no memory controller) and must not be touched anyway, so this one
test boots the oomdvm guest (tools/vm: pure cgroup2, PSI, swap; the host's / read-only
with an overlay) once and runs ``pytest tests/e2e`` in it as root. Everything that
creates cgroups, hogs memory or kills happens inside the guest.

OOMD_SKIP_VM=1 skips it; OOMD_VM_TIMEOUT sets the guest's hard limit in seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from tools.vm import oomdvm

from tests.record.real_kernel import assert_replays_its_kill

REPO = Path(__file__).resolve().parents[1]
E2E = REPO / "tests" / "e2e"
#: Scenarios whose features have landed; each must have run and recorded its numbers.
#: (Others, like senpai, swap_free/kill_by_swap_usage, skip themselves in the guest
#: until ``oomd -l`` lists their plugins.)
REQUIRED = {
    "memory_size_or_growth",
    "recursive_oom_group",
    "avoid_xattr",
    "dry_run",
    "daemon_under_own_pressure",
    "ladder_clean_exit",
    "ladder_escalated",
    "sigkill_baseline",
    "flight_recorder",
}


def _skip_reason() -> str | None:
    if os.environ.get("OOMD_SKIP_VM") not in (None, "", "0"):
        return "OOMD_SKIP_VM is set"
    why = oomdvm.can_run_here()
    return f"cannot run the oomdvm guest here: {why}" if why else None


def _report(results: list[dict[str, object]], timings: dict[str, float]) -> str:
    lines = [f"oomdvm timings: {json.dumps(timings)}"]
    lines += [f"  {r.pop('scenario')}: {json.dumps(r)}" for r in results]
    return "\n".join(lines)


def test_e2e_suite_in_a_real_kernel(tmp_path: Path) -> None:
    why = _skip_reason()
    if why:
        pytest.skip(why)
    started = time.monotonic()
    try:
        image = oomdvm.build()  # cached; cold: installs qemu, downloads kernel + busybox
    except oomdvm.VMError as e:
        pytest.fail(f"cannot build the oomdvm guest: {e}")
    build_s = round(time.monotonic() - started, 2)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--confcutdir={E2E}",  # the host suite's conftest is not needed in the guest
        "--basetemp=/run/e2e",  # a fresh tmpfs in the guest
        "-rs",
        str(E2E),
    ]
    result = oomdvm.run_vm(
        cmd,
        cwd=REPO,
        out=tmp_path / "vm",
        timeout=float(os.environ.get("OOMD_VM_TIMEOUT", "480")),
        stream=False,
        image=image,
    )
    results_file = result.out / "e2e-results.jsonl"
    results = (
        [json.loads(line) for line in results_file.read_text().splitlines()]
        if results_file.exists()
        else []
    )
    ran = {str(r["scenario"]) for r in results}
    report = _report(results, {**result.timings, "build_s": build_s})
    print(report)
    output = result.job_log or result.console
    assert result.rc == 0, (
        f"the e2e suite failed in the guest (rc {result.rc}; 124 = timeout, 125 = the "
        f"guest died; files in {result.out}/.oomdvm):\n{output[-30000:]}\n{report}"
    )
    assert ran >= REQUIRED, f"scenarios that did not run: {REQUIRED - ran}\n{output[-5000:]}"
    # The flight recorder's incident of the real kill, replayed here with the config the
    # guest's daemon ran: the same victim at the same tick (docs/trace-format.md).
    recorded = result.out / "record"
    assert_replays_its_kill(str(recorded / "incident.oomd-trace"), str(recorded / "oomd.json"))
