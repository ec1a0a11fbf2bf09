"""The flight recorder: a bounded rolling window, and an incident file per kill."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from oomd.cgroup.mount import controllers
from oomd.config.default_policy import default_policy
from oomd.config.host_policy import HostFacts, adapt_policy, to_json
from oomd.recorder import LIVE_NAME, QUEUE_TICKS, FlightRecorder, Recorder, trace_meta
from oomd.replay import run_replay
from oomd.trace import Trace, TraceWriter
from tests.record.scenario import MIB, config
from tests.support.daemon import Daemon, our_oomd
from tests.support.harness import Harness
from tests.support.procs import Spawner
from tests.support.tree import FakeProc, FakeTree


def _harness(tmp_path: Path, cgroups: int = 20) -> Harness:
    tree = FakeTree(tmp_path / "cgroup")
    proc = FakeProc(tmp_path / "proc")
    tree.cgroup("workload.slice", current=0, pressure=(0, 0, 0))
    for i in range(cgroups):
        tree.cgroup(
            f"workload.slice/w{i}.service",
            current=(10 + i) * MIB,
            stat={"anon": MIB},
            populated=True,
            pressure=(0, 0, 0),
        )
    return Harness(tree, proc)


def _flight(h: Harness, directory: Path, keep: int) -> FlightRecorder:
    meta = trace_meta(
        h.ctx,
        interval=1,
        dry_run=True,
        own_cgroup=None,
        controllers=None,
        config_text="{}",
        source="test",
    )
    recorder = FlightRecorder(str(directory), keep, h.ctx, meta)
    return recorder


def test_window_is_bounded_in_time_and_size(tmp_path: Path) -> None:
    h = _harness(tmp_path)
    h.load(config(threshold=101), dry_run=True)  # never fires: reads every tick
    recorder = _flight(h, tmp_path / "rec", keep=20)
    live = tmp_path / "rec" / LIVE_NAME
    sizes = []
    for t in range(200):
        for i in range(20):  # every cgroup changes every tick: the worst case
            h.tree.set_current(f"workload.slice/w{i}.service", (10 + i + t) * MIB)
        h.tick()
        recorder.end_tick()
        if t in (99, 199):
            recorder.sync()
            sizes.append(live.stat().st_size)
    recorder.sync()
    trace = Trace(str(live))
    span = trace.ticks[-1][1] - trace.ticks[0][1]
    assert 20 <= span <= 20 + recorder.prune_every + 1
    assert len(trace.ticks) == round(span) + 1
    # The window is a prefix-free trace: it still replays from its first tick.
    assert run_replay(
        trace, str(tmp_path / "c.json"), config_text=json.dumps(config(threshold=101))
    ).ticks == len(trace.ticks)
    # Pruned space is reused: the file stops growing once the window is full.
    assert sizes[1] <= sizes[0] * 1.25, sizes
    recorder.close()
    assert not [p for p in os.listdir(tmp_path / "rec") if p != LIVE_NAME]


def test_a_kill_writes_its_incident_after_the_tail(tmp_path: Path) -> None:
    h = _harness(tmp_path, cgroups=3)
    h.load(config(threshold=50, duration=0), dry_run=True)
    recorder = _flight(h, tmp_path / "rec", keep=30)
    for t in range(60):
        h.tree.set_pressure("workload.slice", 80 if t == 40 else 0)
        h.tick()
        recorder.end_tick()
        recorder.sync()
        if t == 40:
            assert len(h.kills) == 1 and recorder.pending
        if t == 49:
            assert recorder.pending, "the incident waits for its 10 s tail"
    assert not recorder.pending and len(recorder.written) == 1
    incident = Trace(recorder.written[0])
    uuid = os.path.basename(recorder.written[0]).removesuffix(".oomd-trace")
    assert [e.uuid for e in incident.events] == [uuid]
    times = [t[1] for t in incident.ticks]
    kill_time = h.clock.now - 19  # tick 41 of 60, one second apart
    assert times[0] == pytest.approx(kill_time - 30) and times[-1] == pytest.approx(kill_time + 10)
    assert incident.meta["complete"] == "1"
    recorder.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.stop(signal.SIGKILL)


def test_daemon_records_its_kill_and_replay_reproduces_it(
    tree: FakeTree, tmp_path: Path, spawner: Spawner, daemons: list[Daemon]
) -> None:
    small, big = spawner.sleeper(), spawner.sleeper()
    tree.cgroup("workload.slice", pressure=(0, 0, 0), current=500 * MIB)
    tree.cgroup(
        "workload.slice/small.service", current=100 * MIB, procs=[small.pid], stat={"anon": 1}
    )
    tree.cgroup("workload.slice/big.service", current=400 * MIB, procs=[big.pid], stat={"anon": 1})
    cfg = tmp_path / "oomd.json"
    cfg.write_text(json.dumps(config(threshold=50, duration=2)))
    record_dir = tmp_path / "rec"
    argv = [*our_oomd(), "-i", "1", "-D", str(tmp_path / "run"), "-C", str(cfg)]
    argv += ["--record-dir", str(record_dir), "--record-keep", "4"]
    daemon = Daemon(argv, tree.root, tmp_path)
    daemons.append(daemon)
    assert daemon.wait_for(lambda: (record_dir / LIVE_NAME).exists()), daemon.stderr()
    assert daemon.wait_for(lambda: "Running oomd" in daemon.stderr()), daemon.stderr()
    tree.set_pressure("workload.slice", 70, 60, 50)
    assert daemon.wait_for(lambda: any(line.startswith("oomd kill:") for line in daemon.kmsg()))
    assert spawner.is_dead(big) and not spawner.is_dead(small, timeout=0.3)
    uuid = tree.get_xattr("workload.slice/big.service", "trusted.oomd_kill_uuid")
    assert uuid
    incident = record_dir / f"{uuid.decode()}.oomd-trace"
    assert daemon.wait_for(incident.exists, timeout=20), daemon.stderr()
    trace = Trace(str(incident))
    [event] = trace.events
    assert event.line == daemon.kmsg()[0] and event.uuid == uuid.decode()
    result = run_replay(trace, str(cfg))
    [kill] = result.kills
    assert kill.tick == event.tick
    assert kill.line == event.line.replace("killer:", "killer:(dry)")


def test_daemon_on_the_default_policy_records_the_policy_fitted_to_the_host(
    tree: FakeTree, tmp_path: Path, daemons: list[Daemon]
) -> None:
    tree.cgroup("workload.slice", pressure=(0, 0, 0), current=MIB)
    record_dir = tmp_path / "rec"
    argv = [*our_oomd(), "-i", "1", "--dry-run", "-D", str(tmp_path / "run")]
    argv += ["--record-dir", str(record_dir), "--record-keep", "4"]
    daemon = Daemon(argv, tree.root, tmp_path)
    daemons.append(daemon)
    assert daemon.wait_for(lambda: "Running oomd" in daemon.stderr()), daemon.stderr()
    daemon.stop(signal.SIGTERM)
    trace = Trace(str(record_dir / LIVE_NAME))
    fitted, notes = adapt_policy(
        default_policy(), HostFacts(str(tree.root), controllers(str(tree.root)))
    )
    assert notes, "the fake tree lacks what the built-in policy names: it is fitted"
    assert json.loads(trace.meta["config"]) == to_json(fitted)
    # The host files are in every trace, read or not by the config.
    files = {name for cid, name, key in trace.series.values() if cid is None}
    assert {"meminfo", "vmstat", "pressure/memory"} <= files, files


def test_a_lagging_writer_drops_ticks_and_never_blocks_the_tick(tmp_path: Path) -> None:
    h = _harness(tmp_path, cgroups=3)
    h.load(config(threshold=50, duration=0), dry_run=True)
    release, entered = threading.Event(), threading.Event()
    stored: list[int] = []

    def slow(_when: float, tick: int, _events: list[tuple[str, str, str, str]]) -> None:
        entered.set()
        release.wait(30)
        stored.append(tick)

    writer = TraceWriter(str(tmp_path / "t.oomd-trace"), {"interval": "1"})
    recorder = Recorder(h.ctx, writer, threaded=True, after=slow)
    ticks = QUEUE_TICKS + 5
    for t in range(ticks):
        h.tree.set_pressure("workload.slice", 80 if t == ticks - 1 else 0)
        h.tick()
        recorder.end_tick()  # returns at once although the writer is stuck
        if t == 0:
            assert entered.wait(10)
    # One tick in the writer's hands, QUEUE_TICKS queued, the rest dropped; the last
    # tick's kill was dropped with it and goes with the next tick stored.
    assert recorder.dropped == ticks - QUEUE_TICKS - 1 and len(h.kills) == 1
    release.set()
    recorder.sync()
    h.tick()
    recorder.end_tick()
    recorder.stop()
    writer.close()
    assert stored == list(range(1, QUEUE_TICKS + 3))
    trace = Trace(str(tmp_path / "t.oomd-trace"))
    assert trace.meta["dropped_ticks"] == str(recorder.dropped)
    [event] = trace.events
    assert event.tick == QUEUE_TICKS + 2 and event.cgroup.startswith("workload.slice/")
