"""Killing a cgroup's processes, and the ``trusted.oomd_*`` xattrs that record it.

Two ways, both unable to hit a process outside the victim cgroup:

* ``cgroup.kill`` (Linux 5.14+): one write kills the whole subtree atomically, forks
  included. Used whenever the file exists.
* pidfds otherwise: each pass reads ``cgroup.procs``, opens a pidfd per pid, reads
  ``cgroup.procs`` again, and signals only pids still listed. A pidfd pins its process:
  if the pid was recycled between the two reads, the pidfd refers to the dead process
  and the signal fails, so a recycled pid is never signalled. Passes repeat (at most
  10, as upstream) until one finds nothing new; between passes we wait on the pidfds
  for the signalled processes to exit (at most 1 s) instead of sleeping blindly.

After killing, ``process_mrelease`` (syscall 448) frees each victim's memory at once
instead of waiting for the exit path - upstream's ``reap_memory``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import signal
import time
from collections.abc import Callable, Iterator

from oomd import log
from oomd.cgroup import fs
from oomd.cnum import c_int
from oomd.libc import libc

MAX_PASSES = 10
LOG_BATCH = 20
_NR_PROCESS_MRELEASE = 448
#: The kernel's PID_MAX_LIMIT (2^22): a ``cgroup.procs`` line above it names no process
#: (and one >= 2^31 made ``pidfd_open`` raise OverflowError, aborting the whole kill).
PID_MAX_LIMIT = 1 << 22
#: At most this many signalled-but-not-yet-exited processes are remembered across kills.
_DYING_LIMIT = 4096


def new_kill_uuid() -> str:
    """Two random 64-bit numbers in unpadded lowercase hex, as upstream's generateUuid
    (os.urandom: the uuid module costs the daemon 0.2 MiB and fixes 6 of the bits)."""
    value = int.from_bytes(os.urandom(16), "big")
    return f"{value >> 64:x}{value & 0xFFFFFFFFFFFFFFFF:x}"


def _syscall() -> Callable[..., int] | None:
    try:
        fn: Callable[..., int] = libc().syscall
    except OSError:
        return None
    return fn


def process_mrelease(pidfd: int) -> None:
    """Reap a killed process's memory now (Linux 5.15+). Raises OSError."""
    call = _syscall()
    if call is None:
        raise OSError(errno.ENOSYS, "no libc")
    if call(ctypes.c_long(_NR_PROCESS_MRELEASE), ctypes.c_int(pidfd), ctypes.c_uint(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def proc_stat(pid: int, proc_root: str = "/proc") -> tuple[str, str] | None:
    """(comm, state letter) from ``/proc/<pid>/stat``, or None if the process is gone."""
    data = fs.read_bytes(f"{proc_root}/{pid}/stat")
    if data is None:
        return None
    start = data.find(b"(")
    end = data.rfind(b")")
    if start < 0 or end < start:
        return None
    comm = data[start + 1 : end].decode(errors="replace")
    rest = data[end + 2 : end + 3]
    return comm, rest.decode(errors="replace")


def walk(cgroup_dir: str) -> Iterator[str]:
    """The cgroup directory and every descendant, parents first, read fresh."""
    stack = [cgroup_dir]
    while stack:
        current = stack.pop()
        yield current
        prefix = current + "/"
        stack.extend(sorted((prefix + name for name, _ in fs.child_dirs(current)), reverse=True))


def read_pids(cgroup_dir: str) -> list[int] | None:
    data = fs.read_bytes(cgroup_dir + "/cgroup.procs")
    return None if data is None else fs.parse_pids(data)


class KillReport:
    """What happened to one victim cgroup."""

    __slots__ = ("error", "killed", "pids", "reaped")

    def __init__(
        self,
        killed: int = 0,
        error: str | None = None,
        reaped: int | None = None,
        pids: list[int] | None = None,
    ) -> None:
        self.killed = killed
        self.error = error
        self.reaped = reaped
        self.pids: list[int] = [] if pids is None else pids

    def __repr__(self) -> str:
        return (
            f"KillReport(killed={self.killed}, error={self.error!r}, "
            f"reaped={self.reaped}, pids={self.pids})"
        )


class Killer:
    """Kills cgroups. Injectable pieces keep tests off the host's processes."""

    def __init__(
        self,
        proc_root: str = "/proc",
        use_cgroup_kill: bool = True,
        wait_exit: float = 1.0,
        protected_pids: frozenset[int] | None = None,
    ) -> None:
        self.proc_root = proc_root
        self.use_cgroup_kill = use_cgroup_kill
        self.wait_exit = wait_exit
        #: Never signalled, whatever a (possibly fake) cgroup.procs says.
        self.protected_pids = frozenset({os.getpid()}) if protected_pids is None else protected_pids
        #: Processes an earlier kill signalled whose exit was not seen yet (pid -> pidfd):
        #: a later kill (another ruleset, the next tick) finding them still listed must
        #: not count them as killed again, or an already-killed victim is "killed" twice.
        self._dying: dict[int, int] = {}

    def _pinnable(self, pid: int) -> bool:
        """Whether a listed pid may be pinned and signalled at all: never pid <= 1 (0 is
        a process outside our pid namespace), the daemon, a pid no process can have, or
        a process an earlier kill signalled that is still exiting."""
        if pid <= 1 or pid in self.protected_pids:
            return False
        if pid > PID_MAX_LIMIT:
            log.info(f"Skipping pid {pid} listed in cgroup.procs: not a valid pid")
            return False
        old = self._dying.get(pid)
        return old is None or _has_exited(old)

    def _prune_dying(self) -> None:
        for pid, fd in list(self._dying.items()):
            if _has_exited(fd):
                os.close(fd)
                del self._dying[pid]

    def _remember_dying(self, pidfds: dict[int, int], killed: list[int]) -> None:
        """Keep the pidfds of ``killed`` processes not exited yet (close the rest)."""
        keep = set(killed)
        for pid, fd in pidfds.items():
            if pid in keep and not _has_exited(fd) and len(self._dying) < _DYING_LIMIT:
                old = self._dying.pop(pid, None)
                if old is not None and old != fd:
                    os.close(old)
                self._dying[pid] = fd
            elif self._dying.get(pid) != fd:
                os.close(fd)

    def kill(self, cgroup_dir: str, *, freeze: bool = False, reap: bool = True) -> KillReport:
        """SIGKILL every process of ``cgroup_dir`` and its descendants."""
        pidfds: dict[int, int] = {}
        report = KillReport()
        reaper = _Reaper(cgroup_dir) if reap else None
        self._prune_dying()
        try:
            if self.use_cgroup_kill and os.path.exists(cgroup_dir + "/cgroup.kill"):
                self._kill_with_cgroup_kill(cgroup_dir, freeze, pidfds, report, reaper)
            else:
                self._kill_with_pidfds(cgroup_dir, pidfds, report, reaper)
        finally:
            self._remember_dying(pidfds, report.pids)
        if reaper is not None and reaper.started:
            report.reaped = reaper.finish()
        return report

    # -- cgroup.kill ------------------------------------------------------------

    def _kill_with_cgroup_kill(
        self,
        cgroup_dir: str,
        freeze: bool,
        pidfds: dict[int, int],
        report: KillReport,
        reaper: _Reaper | None,
    ) -> None:
        frozen = False
        if freeze:
            try:
                fs.write_control(cgroup_dir + "/cgroup.freeze", "1")
                frozen = True
            except OSError as e:
                log.info(
                    f"Failed to freeze cgroup {cgroup_dir}, proceed to kill without freezing: {e.strerror}"
                )
        populated = fs.read_bytes(cgroup_dir + "/cgroup.events")
        if populated is None:
            report.error = "Failed to read cgroup.events"
            _thaw(cgroup_dir, frozen)
            return
        if fs.parse_populated(populated) is False:
            return
        # Pin every process first, for the log, the count and process_mrelease: what the
        # write kills is what is pinned and alive now (the kernel kills the whole subtree
        # at once). Nothing pinned means nothing to kill: a failed kill, not a phantom one
        # (cgroup.procs empty although cgroup.events says populated, or every process
        # already signalled by an earlier kill and still exiting).
        entries: list[str] = []
        for directory in walk(cgroup_dir):
            for pid in read_pids(directory) or ():
                if pid in pidfds or not self._pinnable(pid):
                    continue
                try:
                    fd = os.pidfd_open(pid)
                except OSError:
                    continue
                if _has_exited(fd):
                    os.close(fd)
                    continue
                pidfds[pid] = fd
                stat = proc_stat(pid, self.proc_root)
                entries.append(f"{pid}({stat[0]})" if stat else str(pid))
        if not pidfds:
            _thaw(cgroup_dir, frozen)
            return
        try:
            fs.write_control(cgroup_dir + "/cgroup.kill", "1")
        except OSError as e:
            report.error = f"Failed to kill cgroup with cgroup.kill: {e.strerror}"
            _thaw(cgroup_dir, frozen)
            return
        report.pids = sorted(pidfds)
        report.killed = len(pidfds)
        for i in range(0, len(entries), LOG_BATCH):
            batch = entries[i : i + LOG_BATCH]
            log.info(f"Killed {len(batch)}: {' '.join(batch)}")
        if reaper is not None:
            reaper.reap(pidfds)
        self._wait_for_exit(list(pidfds.values()))

    # -- pidfds -------------------------------------------------------------------

    def _kill_with_pidfds(
        self, cgroup_dir: str, pidfds: dict[int, int], report: KillReport, reaper: _Reaper | None
    ) -> None:
        for pass_number in range(MAX_PASSES):
            killed_now: list[int] = []
            for directory in walk(cgroup_dir):
                killed_now.extend(self._signal_cgroup(directory, pidfds))
            if not killed_now:
                break
            report.killed += len(killed_now)
            report.pids.extend(killed_now)
            if reaper is not None:
                # Right after the signal, while the victims are still exiting.
                reaper.reap({p: pidfds[p] for p in killed_now})
            if pass_number + 1 < MAX_PASSES:
                self._wait_for_exit([pidfds[p] for p in killed_now])

    def _signal_cgroup(
        self,
        directory: str,
        pidfds: dict[int, int],
        sig: int = signal.SIGKILL,
        verb: str = "Killed",
    ) -> list[int]:
        """One pass over one cgroup: returns the pids newly signalled."""
        listed = read_pids(directory)
        if not listed:
            return []
        opened: dict[int, int] = {}
        entries: dict[int, str] = {}
        for pid in listed:
            if pid in opened or not self._pinnable(pid):
                continue
            old = pidfds.get(pid)
            if old is not None and not _has_exited(old):
                continue  # Already signalled and still dying: not a new process.
            stat = proc_stat(pid, self.proc_root)
            if stat is not None and stat[1] in ("Z", "X"):
                continue  # Dead already; its parent will reap it (as upstream HEAD).
            label = f"{pid}({stat[0]})" if stat else str(pid)
            try:
                opened[pid] = os.pidfd_open(pid)
            except OSError as e:
                entries[pid] = f"{label}[E{e.errno}]"
                continue
            entries[pid] = label
        if opened:
            # Only pids still listed after their pidfd was opened are ours to kill.
            still = set(read_pids(directory) or ())
            for pid, fd in list(opened.items()):
                if pid not in still:
                    os.close(fd)
                    del opened[pid]
                    entries.pop(pid, None)
        killed: list[int] = []
        for pid, fd in opened.items():
            try:
                signal.pidfd_send_signal(fd, sig)
            except OSError as e:
                entries[pid] += f"[E{e.errno}]"
                os.close(fd)
                continue
            previous = pidfds.get(pid)
            if previous is not None:
                # The pid was recycled by a new process in the cgroup: track the new one.
                os.close(previous)
            pidfds[pid] = fd
            killed.append(pid)
        labels = list(entries.values())
        for i in range(0, len(labels), LOG_BATCH):
            batch = labels[i : i + LOG_BATCH]
            n = sum(1 for label in batch if not label.endswith("]"))
            log.info(f"{verb} {n}: {' '.join(batch)}")
        return killed

    # -- a gentler first signal (the kill ladder, oomd.engine.ladder) ---------------

    def signal(self, cgroup_dir: str, sig: int) -> KillReport:
        """Send ``sig`` (e.g. SIGTERM) once to every process of ``cgroup_dir`` and its
        descendants, through pidfds as the SIGKILL path does (a recycled pid is never
        signalled); no waiting, no reaping. ``killed`` counts the processes signalled."""
        pidfds: dict[int, int] = {}
        report = KillReport()
        name = signal.Signals(sig).name
        try:
            for directory in walk(cgroup_dir):
                report.pids.extend(self._signal_cgroup(directory, pidfds, sig, f"Sent {name} to"))
        finally:
            for fd in pidfds.values():
                os.close(fd)
        report.killed = len(report.pids)
        return report

    def signal_process(self, cgroup_dir: str, pid: int, sig: int) -> KillReport:
        """Send ``sig`` to one process of ``cgroup_dir`` or its descendants, through a
        pidfd opened before the pid is checked to be still listed there; ``killed`` is
        1 when it was signalled."""
        report = KillReport()
        if pid in self.protected_pids:
            report.error = f"pid {pid} is oomd itself"
            return report
        try:
            fd = os.pidfd_open(pid)
        except OSError as e:
            report.error = f"pidfd_open({pid}): {e.strerror}"
            return report
        try:
            if not any(pid in (read_pids(d) or ()) for d in walk(cgroup_dir)):
                report.error = f"pid {pid} left {cgroup_dir}"
                return report
            stat = proc_stat(pid, self.proc_root)
            signal.pidfd_send_signal(fd, sig)
        except OSError as e:
            report.error = f"signalling {pid}: {e.strerror}"
            return report
        finally:
            os.close(fd)
        log.info(f"Sent {signal.Signals(sig).name} to 1: {pid}({stat[0] if stat else '?'})")
        report.killed = 1
        report.pids = [pid]
        return report

    def largest_process(self, cgroup_dir: str) -> tuple[int, str, int] | None:
        """(pid, its cgroup directory, RSS + swap in bytes) of the biggest process of
        ``cgroup_dir`` and its descendants (``VmRSS`` + ``VmSwap`` of
        ``/proc/<pid>/status``), or None when it has none that can be read."""
        best: tuple[int, str, int] | None = None
        for directory in walk(cgroup_dir):
            for pid in read_pids(directory) or ():
                if pid in self.protected_pids:
                    continue
                size = _rss_and_swap(pid, self.proc_root)
                if size is not None and (best is None or size > best[2]):
                    best = (pid, directory, size)
        return best

    def _wait_for_exit(self, fds: list[int]) -> None:
        """Wait (at most ``wait_exit`` seconds) until every pidfd reports an exit."""
        if not fds or self.wait_exit <= 0:
            return
        deadline = time.monotonic() + self.wait_exit
        pending = set(fds)
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLIN)
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            for fd, _ in poller.poll(remaining * 1000):
                pending.discard(fd)
                poller.unregister(fd)


def _thaw(cgroup_dir: str, frozen: bool) -> None:
    """Undo a freeze when the kill failed: upstream leaves the cgroup frozen forever."""
    if frozen:
        try:
            fs.write_control(cgroup_dir + "/cgroup.freeze", "0")
        except OSError as e:
            log.info(f"Failed to thaw cgroup {cgroup_dir} after a failed kill: {e.strerror}")


class _Reaper:
    """process_mrelease for killed processes, called right after the signal (while
    they exit, which is when freeing their memory at once helps), with upstream's
    "Reaping"/"Reaped" log lines around all the reaps of one kill."""

    def __init__(self, cgroup_dir: str) -> None:
        self.cgroup_dir = cgroup_dir
        self.started = False
        self.reaped = 0
        self.seconds = 0.0

    def reap(self, pidfds: dict[int, int]) -> None:
        if not pidfds:
            return
        if not self.started:
            log.info(f"Reaping processes in {self.cgroup_dir}")
            self.started = True
        start = time.monotonic()
        for pid, fd in pidfds.items():
            try:
                process_mrelease(fd)
                self.reaped += 1
            except OSError as e:
                if e.errno not in (errno.ESRCH, errno.EINVAL):
                    log.info(f"process_mrelease {pid} failed: {e.strerror}")
        self.seconds += time.monotonic() - start

    def finish(self) -> int:
        log.info(f"Reaped {self.reaped} processes in {int(self.seconds * 1000)}ms")
        return self.reaped


def _rss_and_swap(pid: int, proc_root: str) -> int | None:
    """``VmRSS`` + ``VmSwap`` of a process in bytes; None for a kernel thread, a zombie
    or a process gone."""
    data = fs.read_bytes(f"{proc_root}/{pid}/status")
    if data is None:
        return None
    total: int | None = None
    for line in data.splitlines():
        if line.startswith((b"VmRSS:", b"VmSwap:")):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                total = (total or 0) + (int(fields[1]) << 10)
    return total


def _has_exited(pidfd: int) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


# --- xattrs ----------------------------------------------------------------------

KILL_UUID_XATTRS = ("trusted.oomd_kill_uuid", "user.oomd_kill_uuid")
OOMS_XATTRS = ("trusted.oomd_ooms", "user.oomd_ooms")
KILL_XATTRS = ("trusted.oomd_kill", "user.oomd_kill")


#: A counter xattr is a uint64, as systemd-oomd's; anything else (a delegated user can
#: write any ``user.*`` value on the cgroups it owns) restarts the count.
_COUNTER_MAX = 2**64 - 1


def set_xattr(path: str, name: str, value: str) -> bool:
    try:
        os.setxattr(path, name, value.encode())
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return False
    log.info(f"Set xattr {name}={value} on {path}")
    return True


def read_counter(value: bytes) -> int:
    """A counter xattr's value: missing, empty, garbage, negative, over 20 digits or
    over uint64 count as 0. Never raises (``user.*`` values are the cgroup owner's)."""
    head = value[:32]
    parsed = c_int(head) if len(value) <= 32 else None
    return parsed if parsed is not None and 0 <= parsed <= _COUNTER_MAX else 0


def add_to_xattr(path: str, name: str, delta: int) -> None:
    """Add ``delta`` to a decimal counter xattr; never raises, never stops a kill."""
    try:
        current = read_counter(os.getxattr(path, name))
    except (OSError, ValueError):
        current = 0
    total = current + delta
    set_xattr(path, name, str(total if total <= _COUNTER_MAX else delta))


def record_kill_start(path: str, kill_uuid: str) -> None:
    for name in KILL_UUID_XATTRS:
        set_xattr(path, name, kill_uuid)
    for name in OOMS_XATTRS:
        add_to_xattr(path, name, 1)


def record_kill_done(path: str, killed: int) -> None:
    if killed <= 0:
        return  # nothing was killed: no trusted.oomd_kill (a failed kill, as upstream)
    for name in KILL_XATTRS:
        add_to_xattr(path, name, killed)
