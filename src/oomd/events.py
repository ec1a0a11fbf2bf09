"""Kill events: what the kill core publishes after each kill (dry ones included), for
the daemon's observers - post-kill hooks, Prometheus counters, the last kill that
``oomd status`` shows - without the kill core knowing any of them.

Publishing costs one list test when nobody subscribes. A subscriber must return at
once (post-kill hooks start a process and return); one that raises is logged and
skipped, never the kill's business.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from oomd import log
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


class KillEvent:
    """One kill, as the kill line tells it, plus its time and kill uuid."""

    __slots__ = (
        "avg10",
        "avg60",
        "avg300",
        "cgroup",
        "cgroup_path",
        "detector_group",
        "dry",
        "kill_uuid",
        "killer",
        "line",
        "ruleset",
        "target",
        "time",
        "usage",
    )

    def __init__(
        self,
        *,
        cgroup: str,
        cgroup_path: str,
        ruleset: str,
        detector_group: str,
        killer: str,
        dry: bool,
        usage: int,
        pressure: tuple[float, float, float],
        kill_uuid: str,
        target: Any = None,
        line: str = "",
    ) -> None:
        self.time = time.time()
        self.cgroup = cgroup
        self.cgroup_path = cgroup_path
        self.ruleset = ruleset
        self.detector_group = detector_group
        self.killer = killer
        self.dry = dry
        self.usage = usage
        self.avg10, self.avg60, self.avg300 = pressure
        self.kill_uuid = kill_uuid
        #: The victim's CgroupContext (post-kill hooks match on its xattrs).
        self.target = target
        #: The kill line as written to kmsg, without its ``oomd kill: `` prefix.
        self.line = line

    def fields(self) -> dict[str, Any]:
        """Every field of the kill line, named, plus time and kill uuid (JSON logs,
        ``oomd status``)."""
        return {
            "kill_time": self.time,
            "cgroup": self.cgroup,
            "cgroup_path": self.cgroup_path,
            "ruleset": self.ruleset,
            "detector_group": self.detector_group,
            "killer": self.killer,
            "dry": self.dry,
            "usage": self.usage,
            "mem_pressure_avg10": self.avg10,
            "mem_pressure_avg60": self.avg60,
            "mem_pressure_avg300": self.avg300,
            "kill_uuid": self.kill_uuid,
        }


#: Called with every kill event, in order.
subscribers: list[Callable[[KillEvent], None]] = []


def publish(event: KillEvent) -> None:
    for subscriber in subscribers:
        try:
            subscriber(event)
        except Exception as e:
            log.always(f"Kill event observer failed: {type(e).__name__}: {e}")
