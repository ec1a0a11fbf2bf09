"""The systemd service end to end, run as the job of an oomdvm guest whose PID 1 is
the host's systemd (``tests/test_service_vm.py`` boots it with ``init="systemd"``).

In one boot: ``oomd install-service`` writes the unit, ``systemctl start oomd``
returns (Type=notify: only once READY=1 arrived), ``is-active`` says active and the
STATUS= line is shown, a hog in a test slice is killed by the service, a daemon frozen
with SIGSTOP (its tick hangs: no more WATCHDOG=1) is killed by the watchdog and
restarted, and ``systemctl stop`` ends it cleanly. Prints one JSON line per check and
exits 0 only if every check passed. Not a pytest module: it needs systemd as PID 1 and
would change the host it runs on (it installs and starts a service).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

OUT = Path(os.environ.get("OOMDVM_OUT", "/run"))
OOMD = Path(sys.executable).with_name("oomd")
CONFIG = {
    "rulesets": [
        {
            "name": "service test",
            "detectors": [
                [
                    "oomdtest.slice above 64M",
                    {
                        "name": "memory_above",
                        "args": {"cgroup": "oomdtest.slice", "threshold": "64M", "duration": "0"},
                    },
                ]
            ],
            "actions": [
                {
                    "name": "kill_by_memory_size_or_growth",
                    "args": {"cgroup": "oomdtest.slice/*", "post_action_delay": "1"},
                }
            ],
        }
    ]
}
#: The test's changes to the installed unit: a watchdog short enough to test (-i 1 is
#: passed to install-service), and the daemon's output in the shared out dir.
TEST_DROPIN = f"""[Service]
WatchdogSec=6s
RestartSec=1s
StandardOutput=append:{OUT}/oomd-service.log
StandardError=append:{OUT}/oomd-service.log
"""
#: Masked in the guest: slow under TCG, and nothing the service needs.
TRIMMED = (
    "systemd-tmpfiles-setup.service",
    "systemd-journal-flush.service",
    "systemd-update-utmp.service",
)
HOG = (
    "import os, time\n"
    "b = bytearray(200 << 20)\n"
    "for i in range(0, len(b), 4096): b[i] = 1\n"
    "time.sleep(600)\n"
)

failures: list[str] = []


def check(name: str, ok: bool, **details: object) -> bool:
    print(json.dumps({"check": name, "ok": ok, **details}), flush=True)
    if not ok:
        failures.append(name)
    return ok


def sh(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def show(unit: str, prop: str) -> str:
    return sh("systemctl", "show", "-P", prop, unit).stdout.strip()


def wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def kmsg_kills() -> list[str]:
    lines = []
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        while True:
            try:
                record = os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                break
            except BrokenPipeError:  # overwritten records: keep reading
                continue
            message = record.split(";", 1)[-1].strip()
            if message.startswith("oomd kill:"):
                lines.append(message)
    finally:
        os.close(fd)
    return lines


def main() -> int:
    if os.getpid() == 1 or Path("/proc/1/comm").read_text().strip() != "systemd":
        print("service_check: needs systemd as PID 1 (oomdvm init=systemd)", file=sys.stderr)
        return 2
    Path("/etc/oomd").mkdir(parents=True, exist_ok=True)
    Path("/etc/oomd/oomd.json").write_text(json.dumps(CONFIG))
    # The test's own drop-in, and the guest trimmed of sysinit work that only costs
    # time under TCG (tmpfiles over the 9p root: ~30 s), before install-service's
    # daemon-reload picks them up. The unit itself is not changed.
    dropin = Path("/etc/systemd/system/oomd.service.d")
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "test.conf").write_text(TEST_DROPIN)
    for unit in TRIMMED:
        Path(f"/etc/systemd/system/{unit}").symlink_to("/dev/null")
    t0 = time.monotonic()
    install = sh(str(OOMD), "install-service", "--", "-i", "1")
    check(
        "install-service",
        install.returncode == 0 and "ran systemctl daemon-reload" in install.stdout,
        s=round(time.monotonic() - t0, 2),
        stdout=install.stdout,
        stderr=install.stderr[-2000:],
    )

    started = time.monotonic()
    start = sh("systemctl", "start", "oomd", timeout=180)
    start_s = round(time.monotonic() - started, 2)
    check(
        "systemctl start (returns after READY=1)",
        start.returncode == 0,
        s=start_s,
        stderr=start.stderr,
    )
    active = sh("systemctl", "is-active", "oomd").stdout.strip()
    check("is-active", active == "active", state=active)
    status = show("oomd", "StatusText")
    check("STATUS= shown", status.startswith("1 ruleset armed, "), status=status)
    main_pid = int(show("oomd", "MainPID") or 0)
    oom_adj = Path(f"/proc/{main_pid}/oom_score_adj").read_text().strip() if main_pid else ""
    check("OOMScoreAdjust=-1000", oom_adj == "-1000", oom_score_adj=oom_adj)
    cgroup = show("oomd", "ControlGroup")
    memory_min = Path(f"/sys/fs/cgroup{cgroup}/memory.min").read_text().strip()
    check("MemoryMin=64M", memory_min == str(64 << 20), memory_min=memory_min)

    # A hog in a test slice: the service kills it and says so in /dev/kmsg and STATUS=.
    hog = sh(
        "systemd-run",
        "--unit=oomdtest-hog",
        "--slice=oomdtest.slice",
        "--collect",
        "-p",
        "Type=exec",
        sys.executable,
        "-c",
        HOG,
    )
    check("hog started", hog.returncode == 0, stderr=hog.stderr)
    killed = wait(lambda: any("oomdtest.slice/oomdtest-hog.service" in k for k in kmsg_kills()), 90)
    check("hog killed", killed, kills=kmsg_kills(), hog=show("oomdtest-hog.service", "ActiveState"))
    check(
        "STATUS= reports the kill",
        wait(lambda: "1 kill, last at" in show("oomd", "StatusText"), 10),
        status=show("oomd", "StatusText"),
    )

    # The watchdog: freeze the daemon (its tick hangs, no WATCHDOG=1); WatchdogSec=6s
    # later systemd aborts it and Restart=always brings up a new one.
    frozen_at = time.monotonic()
    os.kill(main_pid, signal.SIGSTOP)
    restarted = wait(
        lambda: show("oomd", "NRestarts") == "1" and show("oomd", "ActiveState") == "active",
        60,
    )
    new_pid = int(show("oomd", "MainPID") or 0)
    check(
        "watchdog restart",
        restarted and new_pid not in (0, main_pid) and not Path(f"/proc/{main_pid}").exists(),
        after_s=round(time.monotonic() - frozen_at, 2),
        old_pid=main_pid,
        new_pid=new_pid,
        n_restarts=show("oomd", "NRestarts"),
    )

    stop = sh("systemctl", "stop", "oomd")
    check(
        "systemctl stop",
        stop.returncode == 0
        and show("oomd", "ActiveState") == "inactive"
        and show("oomd", "Result") == "success",
        result=show("oomd", "Result"),
        stderr=stop.stderr,
    )
    log = (
        (OUT / "oomd-service.log").read_text(errors="replace")
        if (OUT / "oomd-service.log").exists()
        else ""
    )
    check("clean exit logged", "Received signal 15. Exiting!" in log, log_tail=log[-1500:])
    print(json.dumps({"total_s": round(time.monotonic() - t0, 2), "failures": failures}))
    # systemd-analyze verify runs on the host (tests/test_install_service.py).
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
