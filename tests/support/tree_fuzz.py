"""The tree fuzzer (issue 12): random malformed fake cgroup trees, several ticks of every
kill plugin on each, kills intercepted below the daemon's own checks - the real
:class:`oomd.kill.Killer` runs, but ``pidfd_open``, ``pidfd_send_signal`` and the
``cgroup.kill``/``cgroup.freeze`` writes are recorded instead of reaching any process.

Checked after every tree: no plugin error (an exception the guard caught) and no
exception out of a tick; every killed cgroup lies inside the tree and matches its
plugin's pattern; no pid <= 1, no pid of the daemon (this process) was pinned or
signalled. ``tests/test_tree_fuzz.py`` runs a bounded number of seeds;
``tools/fuzz.py`` runs many."""

from __future__ import annotations

import fnmatch
import os
import random
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from oomd.cgroup import fs
from oomd.kill import Killer
from oomd.stats import Stats
from tests.support.harness import Harness, plugin, ruleset
from tests.support.tree import FakeProc, FakeTree

KILL_PLUGINS: dict[str, dict[str, str]] = {
    "kill_by_memory_size_or_growth": {},
    "kill_by_swap_usage": {},
    "kill_by_pressure": {"resource": "memory"},
    "kill_by_io_cost": {},
    "kill_by_pg_scan": {},
}
PATTERNS = ("workload.slice/*", "system.slice/*", "*/*", "workload.slice/a*/*")
NAMES = ("a", "ab", "b", "c d", "x.service", "..x", "-", "a\\b", "é", "a" * 200)
FILES = (
    "memory.current",
    "memory.stat",
    "memory.pressure",
    "io.pressure",
    "memory.swap.current",
    "memory.low",
    "memory.min",
    "memory.high",
    "memory.max",
    "cgroup.procs",
    "cgroup.events",
    "memory.oom.group",
    "io.stat",
    "cgroup.kill",
    "cgroup.freeze",
)


def _garbage(rng: random.Random) -> bytes:
    choice = rng.randrange(12)
    if choice == 0:
        return b""
    if choice == 1:
        return rng.randbytes(rng.randrange(1, 200))
    if choice == 2:
        return b"9" * rng.choice((20, 4300, 5000))
    if choice == 3:
        return b"-1\n"
    if choice == 4:
        return b"some avg10=nan avg60=inf avg300=-1 total=x\nfull\n"
    if choice == 5:
        return b"anon 1e9\nfile -5\npgscan 99999999999999999999999\n"
    if choice == 6:
        return b"max\n"
    if choice == 7:
        return b"populated 2\nfrozen x\n"
    return str(rng.choice((0, 1, 7, 4096, 2**31, 2**63, 2**64))).encode() + b"\n"


def _procs(rng: random.Random) -> str:
    pool = [0, 1, -1, os.getpid(), 2**31, 2**64, 999999999, os.getppid(), 4242]
    return "".join(f"{rng.choice(pool)}\n" for _ in range(rng.randrange(0, 5)))


def build_tree(rng: random.Random, tree: FakeTree) -> None:
    """A tree with some well-formed cgroups and much damage."""
    MB = 1 << 20
    for parent in ("workload.slice", "system.slice", "other"):
        for _ in range(rng.randrange(0, 5)):
            rel = f"{parent}/{rng.choice(NAMES)}"
            if rng.random() < 0.3:
                rel += f"/{rng.choice(NAMES)}"
            mb = rng.randrange(0, 2000)
            try:
                tree.cgroup(
                    rel,
                    current=mb * MB,
                    stat={
                        "anon": mb * MB // 2,
                        "file": mb * MB // 2,
                        "pgscan": rng.randrange(9999),
                    },
                    pressure=(rng.random() * 100, rng.random() * 100, rng.random() * 100),
                    populated=rng.random() < 0.9,
                    memory_files=rng.random() < 0.8,
                )
                tree.write(rel, "cgroup.procs", _procs(rng))
                if rng.random() < 0.5:
                    tree.write(rel, "cgroup.kill", "")
            except OSError:
                continue  # an earlier round put a directory where a file goes
            for _ in range(rng.randrange(0, 4)):
                name = rng.choice(FILES)
                target = tree.path(rel) / name
                if rng.random() < 0.1:
                    if target.exists() and not target.is_dir():
                        target.unlink()
                    if not target.exists():
                        target.mkdir()  # a directory where a file should be
                elif not target.is_dir():
                    target.write_bytes(_garbage(rng))
            if rng.random() < 0.2:
                for xattr in ("trusted.oomd_ooms", "trusted.oomd_prefer", "user.oomd_avoid"):
                    try:
                        os.setxattr(tree.path(rel), xattr, _garbage(rng)[:2000])
                    except OSError:
                        pass
            if rng.random() < 0.05:
                link = tree.path(f"{parent}/link{rng.randrange(9)}")
                if not link.exists() and not link.is_symlink():
                    link.symlink_to(rng.choice(("/", "/proc", "..", str(tree.root))))


class Intercepted:
    """Records what the killer would have done to processes and control files."""

    def __init__(self) -> None:
        self.pinned: list[int] = []
        self.signalled: list[int] = []
        self.writes: list[str] = []
        self._fds: dict[int, int] = {}
        self._ends: list[int] = []

    def pidfd_open(self, pid: int, flags: int = 0) -> int:
        self.pinned.append(pid)
        if not isinstance(pid, int) or pid < 0 or pid >= 2**31:
            raise OverflowError("signed integer is greater than maximum")
        r, w = os.pipe()  # a descriptor that never reports an exit
        self._ends.append(w)
        self._fds[r] = pid
        return r

    def pidfd_send_signal(self, fd: int, sig: int, *args: Any) -> None:
        self.signalled.append(self._fds.get(fd, -1))

    def write_control(self, path: str, text: str) -> None:
        self.writes.append(path)

    def close(self) -> None:
        for fd in self._ends:
            os.close(fd)


@contextmanager
def intercepted() -> Iterator[Intercepted]:
    rec = Intercepted()
    saved = (os.pidfd_open, signal.pidfd_send_signal, fs.write_control)
    os.pidfd_open = rec.pidfd_open
    signal.pidfd_send_signal = rec.pidfd_send_signal
    fs.write_control = rec.write_control
    try:
        yield rec
    finally:
        os.pidfd_open, signal.pidfd_send_signal, fs.write_control = saved
        rec.close()


class RecordingKiller(Killer):
    """The real killer; records the cgroups it was asked to kill."""

    def __init__(self, use_cgroup_kill: bool) -> None:
        super().__init__(use_cgroup_kill=use_cgroup_kill, wait_exit=0)
        self.victims: list[str] = []

    def kill(self, cgroup_dir: str, *, freeze: bool = False, reap: bool = True) -> Any:
        self.victims.append(cgroup_dir)
        return super().kill(cgroup_dir, freeze=freeze, reap=False)


def _matches(rel: str, pattern: str) -> bool:
    parts, pats = rel.split("/"), pattern.split("/")
    return len(parts) == len(pats) and all(
        fnmatch.fnmatchcase(p, q) for p, q in zip(parts, pats, strict=True)
    )


def run_seed(seed: int, ticks: int = 3) -> list[str]:
    """Build tree ``seed``, tick every kill plugin on it; the failures found."""
    rng = random.Random(seed)
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="oomd-fuzz-") as scratch:
        root = Path(scratch)
        tree = FakeTree(root / "cgroup")
        build_tree(rng, tree)
        proc = FakeProc(root / "proc")
        killer = RecordingKiller(use_cgroup_kill=rng.random() < 0.5)
        h = Harness(tree, proc, killer)
        h.stats = h.env.stats = Stats()
        rulesets = []
        patterns = {}
        for name, extra in KILL_PLUGINS.items():
            pattern = rng.choice(PATTERNS)
            patterns[name] = pattern
            args: dict[str, Any] = {"cgroup": pattern, **extra}
            if rng.random() < 0.3:
                args["kernelkill"] = "true"
            rulesets.append(ruleset(name, [("g", [plugin("continue")])], [plugin(name, **args)]))
        h.load({"rulesets": rulesets})
        with intercepted() as rec:
            for tick in range(ticks):
                try:
                    h.tick()
                except Exception as e:
                    failures.append(f"seed {seed} tick {tick}: {type(e).__name__}: {e}")
        errors = h.stats.get("oomd.plugin_errors") or 0
        if errors:
            failures.append(f"seed {seed}: {errors} plugin errors")
        fs_root = os.path.realpath(tree.fs)
        for victim in killer.victims:
            real = os.path.realpath(victim)
            if os.path.commonpath([real, fs_root]) != fs_root:
                failures.append(f"seed {seed}: victim {victim} outside the mount")
                continue
            rel = os.path.relpath(victim, tree.fs)
            if not any(_matches(rel, p) for p in patterns.values()):
                failures.append(f"seed {seed}: victim {rel} matches no pattern")
        for pid in rec.pinned + rec.signalled:
            if pid <= 1 or pid == os.getpid():
                failures.append(f"seed {seed}: pid {pid} pinned or signalled")
        for path in rec.writes:
            if os.path.commonpath([os.path.realpath(path), fs_root]) != fs_root:
                failures.append(f"seed {seed}: wrote {path} outside the mount")
    return failures
