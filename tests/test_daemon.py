"""The real ``oomd`` process: start-up, the runtime lock, signals, and one kill end to
end against a fake tree (bind-mounted over the cgroup2 mount in a private namespace)."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from oomd import daemon
from oomd.daemon import LockError, _load_ir, acquire_lock, own_cgroup
from oomd.options import Options
from tests.support.daemon import Daemon, Daemons, run_oomd
from tests.support.procs import Spawner
from tests.support.tree import FakeTree

CONFIG = {
    "rulesets": [
        {
            "name": "protect workload",
            "detectors": [
                [
                    "workload under pressure",
                    {
                        "name": "pressure_above",
                        "args": {
                            "cgroup": "workload.slice",
                            "resource": "memory",
                            "threshold": "40",
                            "duration": "0",
                        },
                    },
                ]
            ],
            "actions": [
                {"name": "kill_by_memory_size_or_growth", "args": {"cgroup": "workload.slice/*"}}
            ],
        }
    ]
}


def start(
    daemons: Daemons, tree: FakeTree, tmp_path: Path, *args: str, config: object = CONFIG
) -> Daemon:
    cfg = tmp_path / "oomd.json"
    cfg.write_text(json.dumps(config))
    return daemons.start(
        tree.root, tmp_path, "-i", "1", "-D", str(tmp_path / "run"), "-C", str(cfg), *args
    )


def test_daemon_kills_exactly_the_chosen_cgroup(
    tree: FakeTree, tmp_path: Path, spawner: Spawner, daemons: Daemons
) -> None:
    small, big1, big2 = spawner.sleeper(), spawner.sleeper(), spawner.sleeper()
    tree.cgroup("workload.slice", pressure=(60, 50, 40))
    tree.cgroup(
        "workload.slice/small.service", current=100 << 20, procs=[small.pid], stat={"anon": 1}
    )
    tree.cgroup(
        "workload.slice/big.service",
        current=400 << 20,
        procs=[big1.pid, big2.pid],
        stat={"anon": 1},
        pressure=(61.5, 52, 41),
    )
    tree.cgroup("system.slice/bystander.service", current=900 << 20, stat={"anon": 1})
    daemon = start(daemons, tree, tmp_path)
    assert daemon.wait_for(lambda: any(line.startswith("oomd kill:") for line in daemon.kmsg())), (
        daemon.stderr()
    )
    assert spawner.is_dead(big1) and spawner.is_dead(big2)
    assert not spawner.is_dead(small, timeout=0.3)
    assert daemon.kmsg()[0] == (
        "oomd kill: 61.50 52.00 41.00 workload.slice/big.service 419430400 "
        "ruleset:[protect workload] detectorgroup:[workload under pressure] "
        "killer:kill_by_memory_size_or_growth v2"
    )
    assert tree.get_xattr("workload.slice/big.service", "trusted.oomd_kill") == b"2"
    assert tree.get_xattr("workload.slice/big.service", "trusted.oomd_ooms") == b"1"
    assert tree.get_xattr("workload.slice/small.service", "trusted.oomd_ooms") is None
    # The stats socket of the running daemon, through our own client.
    dump = run_oomd("-d", "-D", str(tmp_path / "run"))
    assert dump.returncode == 0, dump.stderr
    assert '\t"oomd.kills" : 1\n' in dump.stdout
    status = daemon.stop(signal.SIGTERM)
    assert status in (-signal.SIGTERM, 128 + signal.SIGTERM)
    err = daemon.stderr()
    assert "Running oomd" in err and "Received signal 15. Exiting!" in err


def test_dry_run_flag_is_announced_first_and_kills_nothing(
    tree: FakeTree, tmp_path: Path, spawner: Spawner, daemons: Daemons
) -> None:
    victim = spawner.sleeper()
    tree.cgroup("workload.slice", pressure=(60, 50, 40))
    tree.cgroup(
        "workload.slice/big.service", current=400 << 20, procs=[victim.pid], stat={"anon": 1}
    )
    daemon = start(daemons, tree, tmp_path, "--dry-run")
    assert daemon.wait_for(lambda: any("killer:(dry)" in line for line in daemon.kmsg())), (
        daemon.stderr()
    )
    assert not spawner.is_dead(victim, timeout=0.3)
    first = daemon.stderr().splitlines()[0]
    assert "oomd running with conf_file=" in first and "--dry-run" in first


def test_second_instance_refuses_to_start(tree: FakeTree, tmp_path: Path, daemons: Daemons) -> None:
    tree.cgroup("workload.slice")
    first = start(daemons, tree, tmp_path)
    assert first.wait_for(lambda: "Running oomd" in first.stderr()), first.stderr()
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    second = daemons.start(
        tree.root,
        second_dir,
        *("-i", "1", "-D", str(tmp_path / "run"), "-C", str(tmp_path / "oomd.json")),
        *("-f", "MOUNT"),
    )
    assert second.proc.wait(20) == 1
    assert 'Failed to acquire exclusive runtime lock="' in second.stderr()
    assert "another oomd" in second.stderr()


def test_config_that_fails_to_compile_exits_3(
    tree: FakeTree, tmp_path: Path, daemons: Daemons
) -> None:
    bad = {
        "rulesets": [
            {"name": "r", "detectors": [["g", {"name": "nope"}]], "actions": [{"name": "stop"}]}
        ]
    }
    daemon = start(daemons, tree, tmp_path, config=bad)
    assert daemon.proc.wait(20) == 3
    assert "Could not locate plugin=nope in plugin registry" in daemon.stderr()


def test_cgroup_fs_outside_cgroup2_is_refused_naming_the_mount(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text("{}")
    result = run_oomd(
        *("-f", str(tmp_path), "-C", str(cfg), "-D", str(tmp_path / "run")),
        *("--kmsg-override", str(tmp_path / "k")),
    )
    assert result.returncode == 3
    assert f"{tmp_path} is not a valid cgroup2 filesystem" in result.stderr
    assert "cgroup2 is mounted at" in result.stderr or "no cgroup2" in result.stderr


def test_unwritable_kmsg_exits_1(tmp_path: Path) -> None:
    result = run_oomd("--kmsg-override", str(tmp_path / "missing-dir" / "k"))
    assert result.returncode == 1
    assert "Unable to open outfile" in result.stderr


def test_default_policy_when_no_config_given(tmp_path: Path) -> None:
    ir, is_default = _load_ir(Options(config=str(tmp_path / "absent.json")))
    assert is_default and ir.source == "<built-in default policy>"
    assert [r.name for r in ir.rulesets] == [
        "system overview",
        "user session protection",
        "protection against low swap",
    ]
    protection = ir.rulesets[1]
    assert [[d.name for d in g.detectors] for g in protection.detector_groups] == [
        ["pressure_above", "memory_reclaim"],
        ["pressure_above", "memory_reclaim"],
    ]
    with pytest.raises(Exception, match="Could not open confg_file="):
        _load_ir(Options(config=str(tmp_path / "absent.json"), config_given=True))


def test_runtime_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    fd = acquire_lock(str(tmp_path / "run"))
    try:
        child = subprocess.run(
            [
                "python3",
                "-c",
                f"import sys; sys.path.insert(0, {str(Path(__file__).parents[1] / 'src')!r});"
                f"from oomd.daemon import acquire_lock; acquire_lock({str(tmp_path / 'run')!r})",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert child.returncode != 0
        assert f"held by pid {os.getpid()}" in child.stderr
        with pytest.raises(LockError):
            acquire_lock("/proc/forbidden/run")
    finally:
        os.close(fd)


def test_drop_in_written_while_running_takes_effect(
    tree: FakeTree, tmp_path: Path, spawner: Spawner, daemons: Daemons
) -> None:
    """-w DIR: a drop-in that replaces the actions makes the daemon kill elsewhere."""
    quiet = {
        "rulesets": [
            {
                "name": "protect workload",
                "drop-in": {"actions": True},
                "detectors": [["always", {"name": "continue"}]],
                "actions": [
                    {"name": "kill_by_memory_size_or_growth", "args": {"cgroup": "nothing.slice/*"}}
                ],
            }
        ]
    }
    victim = spawner.sleeper()
    tree.cgroup(
        "workload.slice/big.service", current=400 << 20, procs=[victim.pid], stat={"anon": 1}
    )
    directory = tmp_path / "dropins"
    directory.mkdir()
    daemon = start(daemons, tree, tmp_path, "-w", str(directory), config=quiet)
    assert daemon.wait_for(lambda: "Running oomd" in daemon.stderr()), daemon.stderr()
    (directory / "kill-workload.json").write_text(
        json.dumps(
            {
                "rulesets": [
                    {
                        "name": "protect workload",
                        "actions": [
                            {
                                "name": "kill_by_memory_size_or_growth",
                                "args": {"cgroup": "workload.slice/*"},
                            }
                        ],
                    }
                ]
            }
        )
    )
    assert daemon.wait_for(
        lambda: any("workload.slice/big.service" in line for line in daemon.kmsg())
    ), daemon.stderr()
    assert spawner.is_dead(victim)
    assert "Drop in config=kill-workload.json injected into engine" in daemon.stderr()


def test_own_cgroup_with_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    """A cgroup name that is not valid UTF-8 must not crash start-up, and must compare
    equal to the paths os.scandir gives (surrogateescape), or the guard that keeps the
    daemon from killing its own cgroup would miss."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_bytes(b"0::/work\xff/oomd\n")
    (proc / "self" / "mountinfo").write_bytes(
        b"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    )
    own = own_cgroup("/sys/fs/cgroup/unified", str(proc))
    assert own == "/sys/fs/cgroup/unified/" + os.fsdecode(b"work\xff") + "/oomd"


def test_mlockall_failure_is_a_warning(monkeypatch: pytest.MonkeyPatch, oolog: Path) -> None:
    """The daemon tries mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT) and warns when it
    cannot (not called for real here: it would lock the test process's memory)."""
    calls: list[int] = []

    class FakeLibc:
        def mlockall(self, flags: int) -> int:
            calls.append(flags)
            ctypes.set_errno(errno.EPERM)
            return -1

    monkeypatch.setattr(daemon, "libc", FakeLibc)
    daemon._try_mlockall()
    assert calls == [1 | 2 | 4]
    assert "Warning: mlockall failed (Operation not permitted)" in oolog.read_text()


def test_oom_score_adj_is_set_or_warned_about(tmp_path: Path, oolog: Path) -> None:
    target = tmp_path / "oom_score_adj"
    target.write_text("0")
    daemon._try_oom_score_adj(str(target))
    assert target.read_text() == "-1000"
    daemon._try_oom_score_adj(str(tmp_path / "missing" / "oom_score_adj"))
    assert (
        "Warning: cannot set oom_score_adj to -1000 (No such file or directory)"
        in oolog.read_text()
    )


def test_daemon_with_an_unreadable_config_exits_3(tmp_path: Path) -> None:
    """Upstream's "can't recover" status in daemon mode (-c would exit 1)."""
    result = run_oomd(
        *("-C", str(tmp_path / "absent.json"), "-D", str(tmp_path / "run")),
        *("--kmsg-override", str(tmp_path / "k")),
    )
    assert result.returncode == 3, result.stderr
    assert f"Could not open confg_file={tmp_path / 'absent.json'}" in result.stderr
