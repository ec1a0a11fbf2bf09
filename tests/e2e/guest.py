"""What the end-to-end tests use inside the oomdvm guest: real cgroups, real memory
hogs, and the real ``oomd`` from the installed package.

These tests run only in the throw-away guest booted by ``tests/test_e2e_vm.py`` (pure
cgroup2 with the memory controller, PSI and swap); everywhere else they are skipped,
since they create cgroups at the root of the hierarchy and kill what runs there.
Python is about 20 times slower in the guest (TCG), so this stays stdlib + pytest.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import our_oomd

CG = Path("/sys/fs/cgroup")
MiB = 1 << 20


def _in_guest() -> bool:
    if os.environ.get("OOMDVM") != "1":
        return False
    try:
        return "memory" in (CG / "cgroup.controllers").read_text().split()
    except OSError:
        return False


IN_GUEST = _in_guest()
#: Every module here starts with ``pytestmark = requires_guest``.
requires_guest = pytest.mark.skipif(
    not IN_GUEST,
    reason="real-kernel e2e test: runs only inside the oomdvm guest (OOMDVM=1, pure "
    "cgroup2 with memory, PSI, swap), which tests/test_e2e_vm.py boots",
)


def missing_plugins(*names: str) -> list[str]:
    """The plugins among ``names`` this version of oomd does not have (``oomd -l``)."""
    from oomd.plugins import registry

    have = set(registry.names())
    return [n for n in names if n not in have]


# --- cgroup files ------------------------------------------------------------------


def read(path: Path) -> str:
    return path.read_text().strip()


def write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def flat_keyed(path: Path) -> dict[str, int]:
    """``memory.events``, ``cgroup.events``, ``/proc/vmstat``: ``key value`` lines."""
    return {k: int(v) for k, v in (line.split() for line in read(path).splitlines())}


def pressure_total(path: Path, kind: str = "some") -> int:
    """The ``total=`` (microseconds) of one line of a PSI file."""
    for line in read(path).splitlines():
        if line.startswith(kind + " "):
            return int(line.rsplit("total=", 1)[1])
    raise ValueError(f"no {kind} line in {path}")


def oom_kills() -> int:
    """Kernel OOM kills since boot, all cgroups."""
    return flat_keyed(Path("/proc/vmstat")).get("oom_kill", 0)


def xattr(cgroup: Path, name: str) -> bytes | None:
    try:
        return os.getxattr(cgroup, name)
    except OSError as e:
        if e.errno == errno.ENODATA:
            return None
        raise


# --- processes ---------------------------------------------------------------------

# A worker: allocate ``size`` bytes in ``step``-MiB slices of incompressible pages per
# loop, then keep touching every page (so reclaimed pages refault: real pressure). It
# reports "<loops> <bytes allocated>" in its beat file, and the CLOCK_MONOTONIC time
# at which its allocation first reached ``mark`` bytes in its mark file. On SIGUSR1 it
# shrinks to ``shrink`` bytes and stays there.
WORKER = r"""
import os, signal, sys, time
size, step, mark, pause, shrink = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                   float(sys.argv[4]), int(sys.argv[5]))
beat, mark_file = sys.argv[6], sys.argv[7]
block = os.urandom(1 << 20)
touch = bytes(256)
blocks = []
loops = 0
shrinking = []
signal.signal(signal.SIGUSR1, lambda *_: shrinking.append(1))
while True:
    if shrinking:
        size = shrink
        del blocks[shrink >> 20:]
    for _ in range(step):
        if len(blocks) << 20 < size:
            blocks.append(bytearray(block))
            if mark and len(blocks) << 20 == mark:
                with open(mark_file, "w") as f:
                    f.write(repr(time.monotonic()))
    if len(blocks) << 20 >= size:
        for b in blocks:
            b[::4096] = touch
    loops += 1
    with open(beat + ".tmp", "w") as f:
        f.write(f"{loops} {len(blocks) << 20}")
    os.replace(beat + ".tmp", beat)
    if pause:
        time.sleep(pause)
"""


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    cgroup: Path
    beat_file: Path
    mark_file: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def beat(self) -> tuple[int, int]:
        """(loops done, bytes allocated); (0, 0) before the first report."""
        try:
            loops, allocated = self.beat_file.read_text().split()
        except (OSError, ValueError):
            return 0, 0
        return int(loops), int(allocated)

    def marked_at(self) -> float | None:
        try:
            return float(self.mark_file.read_text())
        except (OSError, ValueError):
            return None

    def wait_death(self, timeout: float) -> float | None:
        """Wait for the process to exit; the monotonic time it was seen dead, or None."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic()


class Daemon:
    """The real oomd, started in its own cgroup with a config, ``-i 1`` (or
    ``interval``), a kmsg file and a runtime dir of its own."""

    def __init__(
        self,
        workdir: Path,
        config: dict[str, Any],
        cgroup: Path,
        interval: int = 1,
        args: Sequence[str] = (),
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "oomd.json"
        self.config_path.write_text(json.dumps(config, indent=1))
        self.kmsg_path = workdir / "kmsg"
        self.stderr_path = workdir / "oomd.stderr"
        self.cgroup = cgroup
        argv = [*our_oomd(), "-C", str(self.config_path), "-i", str(interval)]
        argv += ["--kmsg-override", str(self.kmsg_path), "-D", str(workdir / "run"), *args]
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                preexec_fn=_enter(cgroup),
            )

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr_tail(self, lines: int = 40) -> str:
        return "\n".join(self.stderr().splitlines()[-lines:])

    def kmsg(self) -> list[str]:
        try:
            return self.kmsg_path.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def kill_lines(self) -> list[str]:
        return [line for line in self.kmsg() if line.startswith("oomd kill:")]

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"oomd exited ({self.proc.returncode}) waiting for {what}:\n"
                    + self.stderr_tail()
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {what} within {timeout}s; oomd said:\n{self.stderr_tail()}"
                )
            time.sleep(0.1)

    def wait_kill_lines(self, count: int, timeout: float = 10) -> list[str]:
        """Exactly ``count`` kill lines, once they are all there (the line is written
        after the victim is dead and reaped)."""
        self.wait_for(lambda: len(self.kill_lines()) >= count, timeout, f"{count} kill line(s)")
        lines = self.kill_lines()
        assert len(lines) == count, lines
        return lines

    def wait_running(self, timeout: float = 30) -> None:
        self.wait_for(lambda: "Running oomd" in self.stderr(), timeout, "'Running oomd'")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _enter(cgroup: Path) -> Callable[[], None]:
    def enter() -> None:
        write(cgroup / "cgroup.procs", "0")

    return enter


KILL_LINE = re.compile(
    r"oomd kill: (?P<p10>\d+\.\d\d) (?P<p60>\d+\.\d\d) (?P<p300>\d+\.\d\d) (?P<cgroup>\S+) "
    r"(?P<usage>\d+) ruleset:\[(?P<ruleset>[^\]]*)\] detectorgroup:\[(?P<group>[^\]]*)\] "
    r"killer:(?P<dry>\(dry\))?(?P<killer>\S+) v2"
)


def parse_kill_line(line: str) -> dict[str, str]:
    m = KILL_LINE.fullmatch(line)
    assert m, f"malformed kill line: {line!r}"
    return m.groupdict(default="")


# --- one scenario ------------------------------------------------------------------


class Scenario:
    """Cgroups, workers and daemons of one test; ``cleanup`` stops the daemons first,
    then kills every cgroup it made (``cgroup.kill``) and removes them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started = time.monotonic()
        self.cgroups: list[Path] = []
        self.daemons: list[Daemon] = []
        self.workers: list[Worker] = []
        self.oom_kills_before = oom_kills()

    def cgroup(self, rel: str, files: dict[str, str] | None = None) -> Path:
        """Create ``rel`` (and its parents, delegating the memory controller down) and
        write ``files`` (e.g. ``{"memory.high": ...}``) in order."""
        path = CG
        for part in Path(rel).parts:
            parent, path = path, path / part
            if "memory" not in read(parent / "cgroup.subtree_control").split():
                write(parent / "cgroup.subtree_control", "+memory")
            if not path.exists():
                path.mkdir()
                self.cgroups.append(path)
        for key, value in (files or {}).items():
            write(path / key, value)
        return path

    def worker(
        self,
        name: str,
        cgroup: Path,
        size: int,
        step_mb: int = 1000,
        pause: float = 0.0,
        mark: int = 0,
        shrink: int = 0,
    ) -> Worker:
        """Start a worker in ``cgroup``. ``step_mb`` MiB are allocated per loop (so a
        small step makes it grow gradually), ``pause`` seconds are slept per loop."""
        beat, mark_file = self.workdir / f"{name}.beat", self.workdir / f"{name}.mark"
        argv = [sys.executable, "-c", WORKER, str(size), str(step_mb), str(mark), str(pause)]
        argv.append(str(shrink))
        proc = subprocess.Popen(
            [*argv, str(beat), str(mark_file)],
            stdin=subprocess.DEVNULL,
            preexec_fn=_enter(cgroup),
        )
        worker = Worker(name, proc, cgroup, beat, mark_file)
        self.workers.append(worker)
        return worker

    def wait_allocated(self, worker: Worker, size: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while worker.beat()[1] < size:
            assert worker.alive(), f"worker {worker.name} died early ({worker.proc.returncode})"
            assert time.monotonic() < deadline, f"worker {worker.name} did not allocate in time"
            time.sleep(0.1)

    def oomd(
        self,
        config: dict[str, Any],
        cgroup: str = "oomd.service",
        interval: int = 1,
        args: Sequence[str] = (),
    ) -> Daemon:
        daemon = Daemon(
            self.workdir / f"oomd{len(self.daemons)}", config, self.cgroup(cgroup), interval, args
        )
        self.daemons.append(daemon)
        return daemon

    def explain(self, daemon: Daemon | None = None) -> str:
        """For failure messages: swap, every cgroup's memory, the end of oomd's log."""
        lines = ["/proc/swaps: " + " | ".join(read(Path("/proc/swaps")).splitlines()[1:])]
        for cg in self.cgroups:
            with contextlib.suppress(OSError, ValueError):
                lines.append(
                    f"{cg.relative_to(CG)}: current={int(read(cg / 'memory.current')) >> 20}M "
                    f"swap={int(read(cg / 'memory.swap.current')) >> 20}M "
                    f"pressure={read(cg / 'memory.pressure').splitlines()[1]}"
                )
        for w in self.workers:
            lines.append(f"worker {w.name}: rc={w.proc.poll()} beat={w.beat()}")
        if daemon is not None:
            lines += ["oomd's log, last lines:", daemon.stderr_tail()]
        return "\n".join(lines)

    def assert_no_kernel_oom_kill(self, *cgroups: Path) -> None:
        for cg in cgroups:
            events = flat_keyed(cg / "memory.events")
            assert events["oom_kill"] == 0, f"kernel OOM kill in {cg}: {events}"
        assert oom_kills() == self.oom_kills_before, "the kernel OOM killer ran"

    def cleanup(self) -> None:
        for daemon in self.daemons:
            daemon.stop()
        out = os.environ.get("OOMDVM_OUT")
        if out:  # keep oomd's files for the host (tests/test_e2e_vm.py's tmp_path)
            for i, daemon in enumerate(self.daemons):
                keep = Path(out) / "e2e" / f"{self.workdir.name}-oomd{i}"
                keep.mkdir(parents=True, exist_ok=True)
                for f in (daemon.config_path, daemon.kmsg_path, daemon.stderr_path):
                    with contextlib.suppress(OSError):
                        shutil.copyfile(f, keep / f.name)
        for cg in reversed(self.cgroups):
            with contextlib.suppress(OSError):
                write(cg / "cgroup.kill", "1")
        for worker in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(10)
        for cg in reversed(self.cgroups):
            for _ in range(50):
                try:
                    cg.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


@contextlib.contextmanager
def scenario(workdir: Path) -> Iterator[Scenario]:
    s = Scenario(workdir)
    try:
        yield s
    finally:
        s.cleanup()


def record(name: str, started: float, **values: float | str | int | None) -> None:
    """Print a scenario's measurements (and its seconds since ``started``) and append
    them to ``$OOMDVM_OUT/e2e-results.jsonl``, which the host-side test reports."""
    entry = {"scenario": name, "scenario_s": round(time.monotonic() - started, 2), **values}
    print(f"e2e-result {json.dumps(entry)}", flush=True)
    out = os.environ.get("OOMDVM_OUT")
    if out:
        with open(Path(out) / "e2e-results.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
