"""The one seam between plugins and the host: everything a plugin reaches outside the
cgroup tree and ``SystemContext``'s readings.

The daemon builds the real :class:`Host` once (``Host(may_panic=True)``) and hands it to every plugin
through ``PluginEnv.host``; tests build one whose paths point into their scratch
directory and, for the kill core, whose killer is a fake - so no module global stands
between a plugin and the machine it runs on.
"""

from __future__ import annotations

from oomd.kill import Killer, KillReport
from oomd.typeshim import Protocol

#: What ``log_kmemalloc_prekill`` copies to kmsg after a kill (upstream's literal path).
KMEMALLOC_PROFILER = "/tmp/oomd_kmemalloc_profiler"


class KillerLike(Protocol):
    """What the kill core needs of a killer (:class:`oomd.kill.Killer`)."""

    def kill(self, cgroup_dir: str, *, freeze: bool = False, reap: bool = True) -> KillReport: ...


class Host:
    """The host's processes, ``/proc``, ``/run``, system bus and systemctl.

    ``system_bus_address`` None means the system bus sd-bus would use
    (``DBUS_SYSTEM_BUS_ADDRESS``, else ``<run_root>/dbus/system_bus_socket``);
    ``systemctl`` None means ``systemctl`` from PATH (or /usr/bin, /bin).
    """

    __slots__ = (
        "killer",
        "kmemalloc_profiler",
        "may_panic",
        "proc_root",
        "run_root",
        "system_bus_address",
        "systemctl",
    )

    def __init__(
        self,
        *,
        killer: KillerLike | None = None,
        proc_root: str = "/proc",
        run_root: str = "/run",
        system_bus_address: str | None = None,
        systemctl: str | None = None,
        may_panic: bool = False,
        kmemalloc_profiler: str = KMEMALLOC_PROFILER,
    ) -> None:
        self.killer: KillerLike = killer if killer is not None else Killer(proc_root=proc_root)
        self.proc_root = proc_root
        self.run_root = run_root
        self.system_bus_address = system_bus_address
        self.systemctl = systemctl
        #: ``kernel_panic`` writes to :attr:`sysrq_trigger` only where this is set: the
        #: daemon's host (and a test's scratch host) set it, so a ``PluginEnv`` built
        #: without a host - in a plugin author's test, say - can never crash the machine.
        self.may_panic = may_panic
        #: Read (only if a regular file owned by root) by ``log_kmemalloc_prekill``.
        self.kmemalloc_profiler = kmemalloc_profiler

    @property
    def sysrq_trigger(self) -> str:
        """Where ``kernel_panic`` writes ``c``."""
        return f"{self.proc_root}/sysrq-trigger"

    @property
    def machines_dir(self) -> str:
        """Where systemd-machined describes running machines (``LEADER=``, ``CLASS=``)."""
        return f"{self.run_root}/systemd/machines"

    def machine_bus_path(self, leader: int) -> str:
        """A container's system bus socket, seen through its leader's root."""
        return f"{self.proc_root}/{leader}/root/run/dbus/system_bus_socket"

    def __repr__(self) -> str:
        return f"Host(proc_root={self.proc_root!r}, run_root={self.run_root!r})"
