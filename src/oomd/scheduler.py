"""When the daemon ticks: on a fixed schedule, and early when a PSI trigger fires.

Scheduled ticks run at start + k * interval on the monotonic clock (missed slots are
skipped, the phase kept), the first one at once. Between ticks the daemon waits in one
``poll`` on its signal pipe and on every PSI trigger descriptor
(oomd.cgroup.triggers). When a trigger fires, an extra tick runs at once - but never
sooner than :data:`EARLY_TICK_GAP` after the previous tick started, so a cgroup that
keeps stalling costs at most one extra tick per half second (and the kernel reports a
trigger at most once per window anyway). An early tick is a full tick; it does not move
the schedule, and a scheduled tick that it made overdue is skipped.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Callable

from oomd import log
from oomd.typeshim import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from oomd.cgroup.triggers import PressureTriggers, Trigger

#: The least time between the start of a tick and an early tick after it.
EARLY_TICK_GAP = 0.5


class Poller(Protocol):
    def register(self, fd: int, eventmask: int = ...) -> None: ...
    def poll(self, timeout: float | None = ...) -> list[tuple[int, int]]: ...


def run_ticks(
    tick: Callable[[], None],
    interval: float,
    wake_fd: int,
    triggers: PressureTriggers | None,
    stopped: Callable[[], bool],
    clock: Callable[[], float] = time.monotonic,
    poller: Poller | None = None,
    tick_kind: Callable[[bool], None] | None = None,
) -> None:
    """Run ``tick`` until ``stopped()``; ``wake_fd`` (the signal pipe) interrupts a
    wait. ``poller`` defaults to the triggers' poll object (which holds their
    descriptors). ``tick_kind(early)`` is told before each tick whether it is an
    early one (the daemon's tick counters)."""
    if poller is None:
        poller = triggers.poller if triggers is not None else select.poll()
    poller.register(wake_fd, select.POLLIN)
    next_tick = clock()
    early = False
    while not stopped():
        started = clock()
        if tick_kind is not None:
            tick_kind(early)
        tick()
        if not early:
            next_tick += interval
        now = clock()
        if next_tick <= now:
            # Overran (or an early tick ran late into the next slot): skip the missed
            # slots, keep the phase.
            next_tick += interval * (int((now - next_tick) / interval) + 1)
        early = False
        fired = False
        while not stopped():
            now = clock()
            if now >= next_tick:
                break
            if fired:
                earliest = started + EARLY_TICK_GAP
                if now >= earliest:
                    early = True
                    break
                deadline = min(next_tick, earliest)
            else:
                deadline = next_tick
            with contextlib.suppress(InterruptedError):
                for fd, revents in poller.poll((deadline - now) * 1000):
                    if fd == wake_fd:
                        with contextlib.suppress(BlockingIOError, InterruptedError):
                            os.read(wake_fd, 512)
                    elif triggers is not None and triggers.handle(fd, revents):
                        fired = True
        if triggers is not None:
            fired_triggers = triggers.take_fired()
            if early:
                _log_early(fired_triggers)


def _log_early(fired: list[Trigger]) -> None:
    shown = ", ".join(f"'{t.form}' on {t.path}" for t in fired[:3])
    more = f" and {len(fired) - 3} more" if len(fired) > 3 else ""
    log.info(f"PSI trigger fired ({shown}{more}): early tick")
