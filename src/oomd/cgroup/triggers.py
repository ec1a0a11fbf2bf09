"""Kernel PSI triggers: wake the daemon as soon as a watched cgroup stalls.

A PSI trigger (kernel >= 5.2, Documentation/accounting/psi.rst) is registered by
writing ``<some|full> <stall us> <window us>`` to a pressure file opened read-write;
the kernel then reports POLLPRI on that descriptor, at most once per window, whenever
the tasks of the cgroup stalled at least ``stall`` microseconds within ``window``. The
trigger lives as long as the descriptor stays open; when the cgroup is removed the
descriptor reports POLLERR for good.

Detectors declare what they watch during their ``run`` (``OomdContext.watch_pressure``,
which hands the cgroup to :meth:`PressureTriggers.watch_cgroup`);
after each tick the daemon calls :meth:`PressureTriggers.end_tick`, which closes the
triggers nothing asked for, and polls their descriptors (:attr:`PressureTriggers.poller`)
together with its signal pipe, handing each result to :meth:`PressureTriggers.handle`.
A trigger that fires runs an extra tick (oomd.scheduler) and counts an event that
``pressure_trigger`` reads.

Trigger forms, best first (the first the kernel accepts is used, and logged):

1. the window asked for (``pressure_trigger``'s ``window_ms``; 1 s for the other
   pressure detectors). Windows that are not a multiple of 2 s need CAP_SYS_RESOURCE;
2. without it, the window rounded up to a multiple of 2 s (at most 10 s, the kernel's
   maximum) with the stall scaled in proportion: what kernels since 6.5 accept from a
   writer without CAP_SYS_RESOURCE (even root lacks it in some containers and VMs);
3. for the system's pressure (the root cgroup), ``/proc/pressure/<resource>`` is
   tried first and the cgroup2 root's ``<resource>.pressure`` (the same pressure) next.

Where none is accepted - kernel without triggers, a file that is not the kernel's (a
fake tree in tests), more watches than :data:`MAX_TRIGGERS` - the watch falls back to
polling: the detectors read the pressure files every tick as before, and one log line
per reason says so.
"""

from __future__ import annotations

import errno
import os
import select
import sys
from collections.abc import Callable

from oomd.typeshim import NamedTuple

#: More watched pressure files than this are polled, not triggered (each trigger is an
#: open descriptor and a kernel object).
MAX_TRIGGERS = 1000
#: The kernel's limits on a trigger window (kernel/sched/psi.c).
WINDOW_MIN_US = 500_000
WINDOW_MAX_US = 10_000_000
#: Without CAP_SYS_RESOURCE, windows must be a multiple of this.
UNPRIVILEGED_WINDOW_US = 2_000_000

_CGROUP2_SUPER_MAGIC = 0x63677270
_PROC_SUPER_MAGIC = 0x9FA0


class Watch(NamedTuple):
    """One pressure file to watch and the trigger wanted on it."""

    #: The pressure file, e.g. ``/sys/fs/cgroup/workload.slice/memory.pressure`` or
    #: ``/proc/pressure/memory``.
    path: str
    #: ``"some"`` or ``"full"``.
    kind: str
    stall_us: int
    window_us: int
    #: Tried when ``path`` accepts no trigger (the cgroup2 root's file for the system's
    #: pressure); empty if none.
    alternative: str = ""

    def text(self) -> str:
        return f"{self.kind} {self.stall_us} {self.window_us}"


class CgroupFiles(NamedTuple):
    """Where a context's pressure files are: what :meth:`PressureTriggers.watch_cgroup`
    needs of it."""

    cgroup_fs: str
    proc_root: str
    #: Whether ``cgroup_fs`` is a real cgroup2 filesystem.
    cgroup2: bool


def threshold_trigger(percent: float) -> tuple[int, int]:
    """(stall, window) in us of the trigger for a detector that compares pressure
    with ``percent``: that share of a 1 s window, the best form the kernel accepts, so
    a tick runs as soon as the cgroup stalls that much instead of up to an interval
    later."""
    window = 1_000_000
    return min(window, max(1, int(window * percent / 100))), window


class Trigger:
    """A registered trigger: its descriptor, the form the kernel accepted, and how many
    times it fired (a counter consumers compare with what they saw last)."""

    __slots__ = ("events", "fd", "form", "path", "watch")

    def __init__(self, watch: Watch, fd: int, path: str, form: str) -> None:
        self.watch = watch
        self.fd = fd
        self.path = path
        self.form = form
        self.events = 0

    def __repr__(self) -> str:
        return f"Trigger({self.path!r}, {self.form!r}, events={self.events})"


def unprivileged_form(stall_us: int, window_us: int) -> tuple[int, int]:
    """(stall, window) with the window rounded up to a multiple of 2 s (at most 10 s)
    and the stall scaled to keep the same share of the window."""
    window = -(-window_us // UNPRIVILEGED_WINDOW_US) * UNPRIVILEGED_WINDOW_US
    window = min(max(window, UNPRIVILEGED_WINDOW_US), WINDOW_MAX_US)
    stall = max(1, min(window, stall_us * window // window_us))
    return stall, window


def is_cgroup2(fd: int) -> bool:
    """Whether ``fd`` lies on a cgroup2 filesystem (a real one, not a fake tree)."""
    return _fs_magic(fd) == _CGROUP2_SUPER_MAGIC


def _fs_magic(fd: int) -> int | None:
    """``f_type`` of the filesystem holding ``fd`` (``fstatfs``), or None."""
    import ctypes  # only the daemon gets here; ctypes is loaded for mlockall anyway

    from oomd.libc import libc

    try:
        c = libc()
    except OSError:
        return None
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit
    if c.fstatfs(fd, buf) != 0:
        return None
    # f_type is the first field, a long (__fsword_t).
    size = ctypes.sizeof(ctypes.c_long)
    return int.from_bytes(buf.raw[:size], sys.byteorder, signed=True)


class PressureTriggers:
    """The daemon's PSI triggers, reconciled with what the detectors watch each tick."""

    def __init__(
        self,
        log: Callable[[str], None],
        max_triggers: int = MAX_TRIGGERS,
        fs_magic: Callable[[int], int | None] = _fs_magic,
    ) -> None:
        self._log = log
        self._max = max_triggers
        self._fs_magic = fs_magic
        self._triggers: dict[Watch, Trigger] = {}
        self._by_fd: dict[int, Trigger] = {}
        #: Watches that got no trigger, with why (not retried while still watched).
        self._failed: dict[Watch, str] = {}
        self._wanted: set[Watch] = set()
        self._logged: set[str] = set()
        self._poller = select.poll()
        #: Set when a trigger fired since the last :meth:`take_fired`.
        self._fired: list[Trigger] = []

    # -- what the detectors call (through OomdContext.watch_pressure) -------------------

    def want(self, watch: Watch) -> Trigger | None:
        """Keep (or register now) a trigger for ``watch`` this tick; None when the
        watch has to be polled instead."""
        trigger = self._triggers.get(watch)
        if trigger is not None:
            self._wanted.add(watch)
            return trigger
        if watch in self._failed:
            self._wanted.add(watch)
            return None
        if len(self._triggers) >= self._max:
            # Not remembered (10,000 watched cgroups must not cost 10,000 entries):
            # the same watches find the limit reached again next tick.
            self._once(
                "limit",
                f"More than {self._max} pressure files are watched: the rest get no PSI "
                f"trigger (e.g. {watch.path}) and are polled every tick",
            )
            return None
        self._wanted.add(watch)
        return self._register(watch)

    def unavailable(self, key: str, line: str) -> None:
        """Log once that a whole class of watches is polled (e.g. a fake tree)."""
        self._once(key, line)

    def watch_cgroup(
        self,
        where: CgroupFiles,
        cgroup_dir: str | None,
        resource: str,
        kind: str,
        stall_us: int,
        window_us: int,
    ) -> Trigger | None:
        """:meth:`want` a trigger ``<kind> <stall_us> <window_us>`` on the
        ``resource`` pressure of the cgroup at ``cgroup_dir``; None stands for the
        root cgroup, i.e. the system (``/proc/pressure/<resource>``, else the cgroup2
        root's file). A cgroup below the root of a filesystem that is not cgroup2 (a
        fake tree) gets none: polled, logged once."""
        filename = resource + ".pressure"
        if cgroup_dir is None:
            alternative = where.cgroup_fs + "/" + filename if where.cgroup2 else ""
            path = where.proc_root + "/pressure/" + resource
            return self.want(Watch(path, kind, stall_us, window_us, alternative))
        if not where.cgroup2:
            self.unavailable(
                "fake-tree",
                f"No PSI triggers on {where.cgroup_fs}: not a cgroup2 filesystem (a fake "
                "tree?); watched pressure files are polled every tick",
            )
            return None
        return self.want(Watch(cgroup_dir + "/" + filename, kind, stall_us, window_us))

    # -- the daemon's side ----------------------------------------------------------------

    def end_tick(self) -> None:
        """Close the triggers (and forget the failures) nothing watched this tick."""
        wanted = self._wanted
        for watch in [w for w in self._triggers if w not in wanted]:
            self._close(self._triggers.pop(watch))
        for watch in [w for w in self._failed if w not in wanted]:
            del self._failed[watch]
        self._wanted = set()

    def fds(self) -> list[int]:
        return list(self._by_fd)

    @property
    def poller(self) -> select.poll:
        """The poll object holding every trigger descriptor (POLLPRI); the daemon adds
        its own descriptors to it."""
        return self._poller

    def handle(self, fd: int, revents: int) -> bool:
        """Account for one poll result; True if it was a trigger firing."""
        trigger = self._by_fd.get(fd)
        if trigger is None:
            return False
        if revents & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
            # The cgroup is gone (the kernel released the trigger): close it; if the
            # cgroup comes back, the next tick's watch registers a new one.
            del self._triggers[trigger.watch]
            self._close(trigger)
            return False
        if revents & select.POLLPRI:
            trigger.events += 1
            self._fired.append(trigger)
            return True
        return False

    def take_fired(self) -> list[Trigger]:
        """The triggers that fired since the last call (for the early-tick log line)."""
        fired, self._fired = self._fired, []
        return fired

    def close(self) -> None:
        for trigger in list(self._triggers.values()):
            self._close(trigger)
        self._triggers.clear()

    def registered(self) -> list[Trigger]:
        return list(self._triggers.values())

    # -- registration ---------------------------------------------------------------------

    def _register(self, watch: Watch) -> Trigger | None:
        reasons: list[tuple[str, str]] = []
        for path in (watch.path, watch.alternative):
            if not path:
                continue
            trigger = self._register_at(watch, path, reasons)
            if trigger is not None:
                self._triggers[watch] = trigger
                self._by_fd[trigger.fd] = trigger
                self._poller.register(trigger.fd, select.POLLPRI)
                asked = watch.text()
                note = (
                    ""
                    if trigger.form == asked
                    else f" instead of '{asked}' (sub-second windows, and windows that are "
                    "not a multiple of 2 s, need CAP_SYS_RESOURCE)"
                )
                self._once(
                    f"form:{path.rsplit('/', 1)[-1]}:{asked}:{trigger.form}",
                    f"PSI trigger registered: '{trigger.form}' on {path}{note}; "
                    "a stall wakes the daemon for an early tick",
                )
                return trigger
        self._failed[watch] = reasons[-1][1]
        self._once(
            "fail:" + reasons[-1][1],
            f"No PSI trigger for {watch.path} ("
            + "; ".join(f"{path}: {why}" for path, why in reasons)
            + "): it is polled every tick (further files failing so are not logged)",
        )
        return None

    def _register_at(
        self, watch: Watch, path: str, reasons: list[tuple[str, str]]
    ) -> Trigger | None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            reasons.append((path, str(e.strerror)))
            return None
        magic = self._fs_magic(fd)
        if magic not in (_CGROUP2_SUPER_MAGIC, _PROC_SUPER_MAGIC):
            # Never write into an ordinary file (a test's fake tree).
            os.close(fd)
            reasons.append((path, "not a kernel pressure file"))
            return None
        forms = [(watch.stall_us, watch.window_us)]
        fallback = unprivileged_form(watch.stall_us, watch.window_us)
        if fallback != forms[0]:
            forms.append(fallback)
        for stall, window in forms:
            form = f"{watch.kind} {stall} {window}"
            try:
                # The kernel turns the last byte into the string's terminator.
                os.write(fd, form.encode() + b"\0")
            except OSError as e:
                if e.errno in (errno.EINVAL, errno.EPERM, errno.EACCES):
                    reasons.append((path, f"'{form}' refused ({e.strerror})"))
                    continue
                reasons.append((path, str(e.strerror)))
                break
            return Trigger(watch, fd, path, form)
        os.close(fd)
        return None

    def _once(self, key: str, line: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            self._log(line)

    def _close(self, trigger: Trigger) -> None:
        self._by_fd.pop(trigger.fd, None)
        try:
            self._poller.unregister(trigger.fd)
        except (KeyError, ValueError):
            pass
        try:
            os.close(trigger.fd)
        except OSError:
            pass


def raise_fd_limit(wanted: int = MAX_TRIGGERS + 256) -> None:
    """Raise the soft RLIMIT_NOFILE to ``wanted`` (within the hard limit) so that the
    triggers fit; a failure only means fewer triggers (EMFILE: polled)."""
    import resource

    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            if target > soft:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError):
        pass


__all__ = [
    "MAX_TRIGGERS",
    "UNPRIVILEGED_WINDOW_US",
    "WINDOW_MAX_US",
    "WINDOW_MIN_US",
    "PressureTriggers",
    "Trigger",
    "Watch",
    "is_cgroup2",
    "raise_fd_limit",
    "unprivileged_form",
]
