"""The tick schedule: fixed slots, early ticks when a PSI trigger fires, the floor
between a tick and an early tick, and stopping. A fake clock and a scripted poller
stand in for time and ``poll`` (no sleeping)."""

from __future__ import annotations

import itertools
import os
import select
from collections.abc import Callable

import pytest

from oomd.cgroup.triggers import PressureTriggers, Trigger, Watch
from oomd.scheduler import EARLY_TICK_GAP, run_ticks

TRIGGER_FD = 1000


class FakeTriggers(PressureTriggers):
    """One pretend trigger on descriptor TRIGGER_FD."""

    def __init__(self) -> None:
        super().__init__(log=lambda _line: None)
        watch = Watch("/cg/memory.pressure", "some", 150_000, 2_000_000)
        self.trigger = Trigger(watch, TRIGGER_FD, watch.path, watch.text())
        self._triggers[watch] = self.trigger
        self._by_fd[TRIGGER_FD] = self.trigger


class ScriptedPoller:
    """``poll`` advances the fake clock: to the first scripted event due before the
    timeout (and returns it), else by the whole timeout."""

    def __init__(self, clock: list[float], events: list[tuple[float, int, int]]) -> None:
        self.clock = clock
        self.events = sorted(events)
        self.registered: dict[int, int] = {}

    def register(self, fd: int, eventmask: int = 0) -> None:
        self.registered[fd] = eventmask

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        assert timeout is not None and timeout >= 0
        deadline = self.clock[0] + timeout / 1000
        if self.events and self.events[0][0] <= deadline:
            at, fd, revents = self.events.pop(0)
            self.clock[0] = max(self.clock[0], at)
            return [(fd, revents)]
        self.clock[0] = deadline
        return []


def run(
    events: list[tuple[float, int, int]],
    until: float,
    interval: float = 5.0,
    tick_cost: float = 0.0,
    triggers: FakeTriggers | None = None,
) -> tuple[list[float], FakeTriggers]:
    """Tick times (on the fake clock) of a loop run until ``until``."""
    clock = [100.0]
    ticks: list[float] = []
    trig = triggers if triggers is not None else FakeTriggers()
    read_fd, write_fd = os.pipe()
    poller = ScriptedPoller(clock, [(100.0 + at, fd, ev) for at, fd, ev in events])

    def tick() -> None:
        ticks.append(round(clock[0] - 100.0, 6))
        clock[0] += tick_cost

    def stopped() -> bool:
        return clock[0] - 100.0 >= until

    try:
        run_ticks(tick, interval, read_fd, trig, stopped, clock=lambda: clock[0], poller=poller)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    return ticks, trig


PRI = select.POLLPRI


def test_ticks_on_fixed_slots_without_triggers() -> None:
    ticks, _ = run([], until=21)
    assert ticks == [0, 5, 10, 15, 20]


def test_trigger_runs_an_early_tick_at_once_and_keeps_the_schedule() -> None:
    ticks, trig = run([(7.25, TRIGGER_FD, PRI)], until=16)
    assert ticks == [0, 5, 7.25, 10, 15]
    assert trig.trigger.events == 1


def test_early_tick_waits_for_the_floor_after_the_previous_tick() -> None:
    ticks, _ = run([(5.1, TRIGGER_FD, PRI)], until=11)
    assert ticks == [0, 5, 5 + EARLY_TICK_GAP, 10]


def test_repeated_events_cost_at_most_one_early_tick_per_gap() -> None:
    events = [(1.0 + 0.1 * i, TRIGGER_FD, PRI) for i in range(20)]  # 1.0 .. 2.9
    ticks, trig = run(events, until=4)
    assert trig.trigger.events == 20
    early = [t for t in ticks if t not in (0,)]
    assert all(b - a >= EARLY_TICK_GAP for a, b in itertools.pairwise(early))
    assert early[0] == 1.0 and len(early) <= 5


def test_an_early_tick_that_overruns_the_slot_replaces_it() -> None:
    ticks, _ = run([(4.8, TRIGGER_FD, PRI)], until=11, tick_cost=0.5)
    # 4.8 runs until 5.3: the 5 s slot is skipped, the phase kept.
    assert ticks == [0, 4.8, 10]


def test_pollerr_drops_the_trigger_without_an_early_tick() -> None:
    ticks, trig = run([(2.0, TRIGGER_FD, select.POLLERR | PRI)], until=6)
    assert ticks == [0, 5]
    assert trig.registered() == [] and trig.fds() == []


def test_signal_pipe_wakes_and_stops_the_loop() -> None:
    clock = [0.0]
    stop = [False]
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"\x0f")
    ticks: list[float] = []

    class WakePoller(ScriptedPoller):
        def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
            stop[0] = True  # the signal handler ran
            return [(read_fd, select.POLLIN)]

    try:
        run_ticks(
            lambda: ticks.append(clock[0]),
            5.0,
            read_fd,
            None,
            lambda: stop[0],
            clock=lambda: clock[0],
            poller=WakePoller(clock, []),
        )
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert ticks == [0.0]


@pytest.mark.parametrize("interval", [1.0, 5.0])
def test_the_daemon_default_poller_holds_the_trigger_fds(interval: float) -> None:
    """Without a scripted poller the triggers' own poll object is used."""
    trig = PressureTriggers(log=lambda _line: None)
    read_fd, write_fd = os.pipe()
    calls: list[int] = []
    stop: Callable[[], bool] = lambda: len(calls) >= 1  # noqa: E731
    try:
        os.write(write_fd, b"x")  # the first wait returns at once
        run_ticks(lambda: calls.append(1), interval, read_fd, trig, stop)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert calls == [1]
