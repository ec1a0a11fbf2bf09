"""oomd.service under a real systemd: the oomdvm guest booted with systemd as PID 1
(``init="systemd"``; the host's / read-only with a tmpfs overlay, so installing and
starting a service there leaves the host alone) runs ``tests/e2e/service_check.py``:
install, start (READY=1), is-active, a hog killed, a watchdog restart, a clean stop.

OOMD_SKIP_VM=1 skips it, as the other guest test; so does a host without
/lib/systemd/systemd (apt-get install systemd).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from tools.vm import oomdvm

from tests.test_e2e_vm import _skip_reason

REPO = Path(__file__).resolve().parents[1]
SYSTEMD = Path("/lib/systemd/systemd")


def test_oomd_service_under_systemd_in_a_real_kernel(tmp_path: Path) -> None:
    why = _skip_reason()
    if why:
        pytest.skip(why)
    if not SYSTEMD.exists():
        pytest.skip(f"{SYSTEMD} is not installed on the host (apt-get install systemd)")
    try:
        image = oomdvm.build()
    except oomdvm.VMError as e:
        pytest.fail(f"cannot build the oomdvm guest: {e}")
    result = oomdvm.run_vm(
        [sys.executable, str(REPO / "tests" / "e2e" / "service_check.py")],
        cwd=REPO,
        out=tmp_path / "vm",
        mem="1G",
        swap="none",
        timeout=float(os.environ.get("OOMD_VM_TIMEOUT", "300")),
        stream=False,
        image=image,
        init="systemd",
    )
    checks = [json.loads(line) for line in result.job_log.splitlines() if line.startswith("{")]
    print(f"oomdvm timings: {json.dumps(result.timings)}")
    for c in checks:
        print(f"  {json.dumps(c)[:300]}")
    output = result.job_log or result.console
    assert result.rc == 0, (
        f"the service checks failed in the guest (rc {result.rc}; 124 = timeout, 125 = the "
        f"guest died; files in {result.out}/.oomdvm):\n{output[-20000:]}"
    )
    names = {c.get("check") for c in checks if c.get("ok")}
    assert {"hog killed", "watchdog restart", "systemctl stop"} <= names, output[-5000:]
