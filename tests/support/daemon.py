"""Run an oomd binary (ours or upstream's) as a real process: the one way the suite
starts a daemon (:class:`Daemons`, the ``daemons`` fixture) or runs ``oomd`` to
completion (:func:`run_oomd`).

Upstream insists that ``--cgroup-fs`` lies under a cgroup2 mount, and so do we. A fake
tree is therefore bind-mounted over the host's cgroup2 mount point inside a private
mount namespace (``unshare -m``): the daemon sees the fake files at a cgroup2 path, the
host sees nothing, and the test keeps writing the tree at its own path. Without a tree
the daemon sees the host's cgroups as they are.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from oomd.cgroup import mount


def our_oomd() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m oomd``."""
    script = Path(sys.executable).with_name("oomd")
    return [str(script)] if script.exists() else [sys.executable, "-m", "oomd"]


def run_oomd(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Our oomd with ``args``, run to completion (a client command, a start-up that
    must fail): its status, stdout and stderr."""
    return subprocess.run(
        [*our_oomd(), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


#: Debian's build of upstream oomd (0.5.0), the oracle of tests/differential.
UPSTREAM_OOMD = os.environ.get("OOMD_UPSTREAM", "/usr/bin/oomd")


def upstream_oomd() -> list[str]:
    """Upstream's binary, or skip (``make test`` installs it with apt where it can)."""
    try:
        with open(UPSTREAM_OOMD, "rb") as f:
            is_elf = f.read(4) == b"\x7fELF"
    except OSError:
        pytest.skip(f"upstream oomd not installed at {UPSTREAM_OOMD} (apt-get install oomd)")
    if not is_elf:
        pytest.skip(f"{UPSTREAM_OOMD} is not upstream's (C++) oomd")
    return [UPSTREAM_OOMD]


def cgroup2_mount_point(namespace: bool = True) -> str:
    """The host's cgroup2 mount point; skips without one or, for a private mount
    namespace (``namespace``), without root and ``unshare(1)``."""
    mounts = mount.cgroup2_mounts()
    if not mounts:
        pytest.skip("no cgroup2 filesystem mounted on this host")
    if namespace and (os.geteuid() != 0 or shutil.which("unshare") is None):
        pytest.skip("needs root and unshare(1) to mount a fake tree over cgroup2")
    return mounts[0]


class Daemon:
    """A running daemon; stops it (SIGTERM, then SIGKILL) on ``stop``."""

    def __init__(
        self,
        argv: Sequence[str],
        tree: Path | None,
        workdir: Path,
        binds: Sequence[tuple[Path, str]] = (),
    ) -> None:
        """``tree``: the fake tree the daemon sees at the cgroup2 mount point (None:
        the host's cgroups). ``binds``: more (file, target) bind mounts inside the
        namespace, e.g. a fake ``/proc/meminfo`` that only this daemon sees. stderr
        goes to ``workdir/daemon.stderr``, kmsg lines to ``workdir/kmsg``."""
        mounts = [(str(src), dst) for src, dst in binds]
        self.mount_point = cgroup2_mount_point(namespace=tree is not None or bool(mounts))
        self.stderr_path = workdir / "daemon.stderr"
        self.kmsg_path = workdir / "kmsg"
        self.kmsg_path.touch()
        # "MOUNT" in argv stands for the cgroup2 mount point, where the tree will be.
        argv = [self.mount_point if a == "MOUNT" else a for a in argv]
        if "-f" not in argv:
            argv = [*argv, "-f", self.mount_point]
        argv = [*argv, "--kmsg-override", str(self.kmsg_path)]
        if tree is not None:
            mounts.insert(0, (str(tree), self.mount_point))
        if mounts:
            script = "".join(
                f"mount --bind {shlex.quote(src)} {shlex.quote(dst)} && " for src, dst in mounts
            )
            script += "exec " + " ".join(shlex.quote(a) for a in argv)
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script]
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr
        )

    @property
    def fs(self) -> str:
        """The ``--cgroup-fs`` path under which the daemon sees the fake tree."""
        return self.mount_point

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kmsg(self) -> list[str]:
        return self.kmsg_path.read_text(errors="replace").splitlines()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if self.proc.poll() is not None:
                return predicate()
            time.sleep(0.05)
        return False

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode


class Daemons:
    """The ``daemons`` fixture: starts our daemon for a test, and kills (SIGKILL) every
    one it started that is still running when the test ends."""

    def __init__(self) -> None:
        self.started: list[Daemon] = []

    def start(
        self,
        tree: Path | None,
        workdir: Path,
        *args: str,
        binds: Sequence[tuple[Path, str]] = (),
        env: Mapping[str, str] | None = None,
    ) -> Daemon:
        """Our oomd with ``args`` (see :class:`Daemon` for ``tree``, ``workdir`` and
        ``binds``; ``"MOUNT"`` in ``args`` stands for the cgroup2 mount point), with
        ``env`` added to the test's environment (through env(1))."""
        prefix = ["env", *(f"{k}={v}" for k, v in env.items())] if env else []
        daemon = Daemon([*prefix, *our_oomd(), *args], tree, workdir, binds)
        self.started.append(daemon)
        return daemon

    def stop_all(self) -> None:
        for daemon in self.started:
            daemon.stop(signal.SIGKILL)
