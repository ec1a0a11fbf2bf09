"""Differential tests: upstream oomd (Debian's 0.5.0, ``/usr/bin/oomd``) and ours run
side by side, each on its own copy of the same fake tree (bind-mounted over the cgroup2
mount inside ``unshare -m``, since both insist on a cgroup2 ``--cgroup-fs``) with the
same config and flags, at ``-i 1``. Their kmsg kill lines must be identical, and in
real-kill scenarios exactly the victim's processes (spawned by the test) must die on
both sides.

A scenario with ``upstream_expect`` documents a deliberate difference (an upstream bug,
or a 0.5.0 behaviour that upstream HEAD, which we follow, changed): it asserts our lines
and records upstream's; see docs/compatibility.md.

Needs root, unshare(1), a cgroup2 mount and the upstream binary; skips with the reason
otherwise (``make test`` installs Debian's oomd with apt-get where it can).
"""

from __future__ import annotations

import functools
import json
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.differential.scenarios import DEV, SCENARIOS, Scenario, Side
from tests.support.daemon import Daemon, cgroup2_mount_point, our_oomd, upstream_oomd
from tests.support.procs import Spawner

KILL_PREFIX = "oomd kill: "
STEP = 0.1  # seconds between counter advances


def kill_lines(daemon: Daemon) -> list[str]:
    return [line for line in daemon.kmsg() if line.startswith(KILL_PREFIX)]


def _has_kills(daemon: Daemon, count: int) -> bool:
    return len(kill_lines(daemon)) >= count


def _advance(scenario: Scenario, sides: list[Side], stop: threading.Event) -> None:
    assert scenario.advance is not None
    step = 0
    while not stop.wait(STEP):
        step += 1
        for side in sides:
            scenario.advance(side, step)


def _wait_for_death(side: Side, pids: set[int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pids <= set(side.live.died) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_upstream_and_ours_agree(scenario: Scenario, tmp_path: Path) -> None:
    binaries = {"ours": our_oomd(), "upstream": upstream_oomd()}
    cgroup2_mount_point()  # skips without root, unshare or cgroup2
    if "block device" in scenario.needs and DEV is None:
        pytest.skip("no block device with a queue/rotational file for --device")
    spawner = Spawner()
    sides = [Side.make(name, tmp_path / name, spawner) for name in binaries]
    daemons: dict[str, Daemon] = {}
    stop = threading.Event()
    advancer: threading.Thread | None = None
    binds: list[tuple[Path, str]] = []
    if scenario.meminfo is not None:
        fake = tmp_path / "meminfo"
        fake.write_text(scenario.meminfo)
        binds.append((fake, "/proc/meminfo"))
    config = tmp_path / "oomd.json"
    config.write_text(json.dumps(scenario.config, indent=2))
    want = len(scenario.expect)
    try:
        for side in sides:
            scenario.build(side)
            side.live.start()
        if scenario.advance is not None:
            advancer = threading.Thread(target=_advance, args=(scenario, sides, stop), daemon=True)
            advancer.start()
        for side in sides:
            argv = [
                *binaries[side.name],
                *("-i", "1", "-D", str(side.work / "run"), "-C", str(config)),
                *scenario.args,
            ]
            daemons[side.name] = Daemon(argv, side.tree.root, side.work, binds)
        if scenario.window is not None:
            time.sleep(scenario.window)
        else:
            for daemon in daemons.values():
                daemon.wait_for(functools.partial(_has_kills, daemon, want), timeout=20)
    finally:
        stop.set()
        if advancer is not None:
            advancer.join()
        for daemon in daemons.values():
            daemon.stop(signal.SIGTERM)
        deaths: dict[str, set[int]] = {}
        for side in sides:
            _wait_for_death(side, side.pids_under(scenario.killed))
            side.live.stop()
            deaths[side.name] = set(side.live.died)
        # Only now (no daemon can read a cgroup.procs any more) are processes reaped.
        spawner.cleanup()

    def report(name: str) -> str:
        return f"{name} stderr (tail):\n{daemons[name].stderr()[-4000:]}"

    lines = {name: kill_lines(d) for name, d in daemons.items()}
    if scenario.window is None:
        lines = {name: got[:want] for name, got in lines.items()}
    assert lines["ours"] == list(scenario.expect), report("ours")
    upstream_expect = scenario.upstream_expect
    if upstream_expect is None:
        assert lines["upstream"] == lines["ours"], report("upstream")
    else:
        # A documented deliberate difference: upstream does what we chose not to.
        assert lines["upstream"] == list(upstream_expect), report("upstream")
        assert scenario.difference
    for side in sides:
        # Exactly the victims' processes died, on both sides.
        assert deaths[side.name] == side.pids_under(scenario.killed), (
            f"{side.name}: died {sorted(deaths[side.name])}, "
            f"expected {sorted(side.pids_under(scenario.killed))}"
        )
        # Both record the attempt on the victim: one OOM, a fresh kill UUID (two 64-bit
        # numbers in unpadded hex).
        for rel in scenario.killed:
            assert side.tree.get_xattr(rel, "trusted.oomd_ooms") == b"1", side.name
            kill_uuid = side.tree.get_xattr(rel, "trusted.oomd_kill_uuid") or b""
            assert 2 <= len(kill_uuid) <= 32 and int(kill_uuid, 16) > 0, side.name
