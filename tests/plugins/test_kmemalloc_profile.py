"""``log_kmemalloc_prekill`` copies upstream's fixed /tmp/oomd_kmemalloc_profiler to kmsg
after a kill (issue 12 item 8): a FIFO planted there blocked the daemon in ``open()``,
a symlink copied a root-only file into the log. The path is the host's
(``Host.kmemalloc_profiler``), here one in the test's scratch directory."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tests.support.harness import Harness, always_acting, plugin
from tests.support.procs import Spawner

MB = 1 << 20


def kill_once(h: Harness, spawner: Spawner, profile: Path) -> list[str]:
    """Kill one victim with log_kmemalloc_prekill; the kmsg lines after the kill line.
    Fails (instead of hanging the suite) if the tick blocks."""
    victim = spawner.sleeper()
    h.tree.cgroup("w/a", current=100 * MB, stat={"anon": 100 * MB}, procs=[victim.pid])
    h.env.host.kmemalloc_profiler = str(profile)
    h.load(
        always_acting(
            plugin(
                "kill_by_memory_size_or_growth",
                cgroup="w/*",
                log_kmemalloc_prekill="true",
            )
        )
    )
    ticker = threading.Thread(target=h.tick, daemon=True)
    ticker.start()
    ticker.join(20)
    blocked = ticker.is_alive()
    if blocked:  # unblock the tick stuck opening a FIFO, then fail
        os.close(os.open(profile, os.O_WRONLY | os.O_NONBLOCK))
        ticker.join(5)
    assert not blocked, "the tick blocked on the profiler path"
    assert spawner.is_dead(victim)
    lines = h.kmsg.lines
    kill = next(i for i, line in enumerate(lines) if line.startswith("oomd kill: "))
    return lines[kill + 1 :]


def test_a_root_owned_regular_file_is_copied(
    harness: Harness, spawner: Spawner, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    profile.write_text("slab 1\nslab 2\n")
    assert kill_once(harness, spawner, profile) == ["slab 1", "slab 2"]


def test_a_fifo_does_not_block_the_daemon(
    harness: Harness, spawner: Spawner, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    os.mkfifo(profile)
    assert kill_once(harness, spawner, profile) == []


def test_a_symlink_is_not_followed(harness: Harness, spawner: Spawner, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    profile = tmp_path / "profile"
    profile.symlink_to(secret)
    assert kill_once(harness, spawner, profile) == []


def test_a_file_owned_by_a_user_is_not_copied(
    harness: Harness, spawner: Spawner, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    profile.write_text("forged kill line\n")
    os.chown(profile, 65534, 65534)
    assert kill_once(harness, spawner, profile) == []
