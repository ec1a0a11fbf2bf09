"""The fake cgroup2 tree every test builds on.

A directory per cgroup (each with ``cgroup.controllers``, which upstream requires),
control files written exactly as the kernel formats them, and helpers to change them
between ticks. Processes listed in ``cgroup.procs`` must be ones the test spawned.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

CONTROLLERS = "cpuset cpu io memory hugetlb pids"


def psi_text(
    avg10: float = 0.0,
    avg60: float = 0.0,
    avg300: float = 0.0,
    total: int = 0,
    some: tuple[float, float, float, int] | None = None,
) -> str:
    """A PSI file: ``some`` then ``full`` line (``some`` defaults to the full values)."""
    s = some if some is not None else (avg10, avg60, avg300, total)
    return (
        f"some avg10={s[0]:.2f} avg60={s[1]:.2f} avg300={s[2]:.2f} total={s[3]}\n"
        f"full avg10={avg10:.2f} avg60={avg60:.2f} avg300={avg300:.2f} total={total}\n"
    )


def _limit(value: int | str | None) -> str:
    return "max" if value is None or value == "max" else str(value)


class FakeTree:
    """A fake cgroup2 filesystem rooted at ``root``."""

    def __init__(self, root: Path, controllers: str = CONTROLLERS) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "cgroup.controllers").write_text(controllers + "\n")

    @property
    def fs(self) -> str:
        return str(self.root)

    def path(self, rel: str) -> Path:
        return self.root / rel if rel not in ("", "/") else self.root

    def write(self, rel: str, filename: str, content: str) -> None:
        (self.path(rel) / filename).write_text(content)

    def write_atomic(self, rel: str, filename: str, content: str) -> None:
        """Replace a file by rename, so a daemon reading it meanwhile (e.g. a counter
        a test advances while daemons run) sees the old or the new content, never half."""
        target = self.path(rel) / filename
        tmp = target.with_name(f".{filename}.tmp")
        tmp.write_text(content)
        os.replace(tmp, target)

    def cgroup(
        self,
        rel: str,
        *,
        current: int | None = None,
        low: int | None = None,
        min: int | None = None,
        high: int | str | None = None,
        max: int | str | None = None,
        swap: int | None = None,
        swap_max: int | str | None = None,
        pressure: tuple[float, float, float] | None = None,
        io_pressure: tuple[float, float, float] | None = None,
        stat: Mapping[str, int] | None = None,
        procs: Iterable[int] | None = None,
        populated: bool | None = None,
        oom_group: bool | None = None,
        nr_dying: int | None = None,
        memory_files: bool = True,
    ) -> Path:
        """Create (or update) a cgroup. With ``memory_files`` the memory interface files
        a real memory-controller cgroup has are written with kernel defaults."""
        d = self.path(rel)
        parts = [] if d == self.root else list(d.relative_to(self.root).parts)
        cur = self.root
        for part in parts:
            cur = cur / part
            if not cur.is_dir():
                cur.mkdir()
                (cur / "cgroup.controllers").write_text(CONTROLLERS + "\n")
        if memory_files:
            defaults = {
                "memory.low": "0",
                "memory.min": "0",
                "memory.high": "max",
                "memory.max": "max",
            }
            for name, value in defaults.items():
                if not (d / name).exists():
                    (d / name).write_text(value + "\n")
        if current is not None:
            self.write(rel, "memory.current", f"{current}\n")
        if low is not None:
            self.write(rel, "memory.low", f"{low}\n")
        if min is not None:
            self.write(rel, "memory.min", f"{min}\n")
        if high is not None:
            self.write(rel, "memory.high", _limit(high) + "\n")
        if max is not None:
            self.write(rel, "memory.max", _limit(max) + "\n")
        if swap is not None:
            self.write(rel, "memory.swap.current", f"{swap}\n")
        if swap_max is not None:
            self.write(rel, "memory.swap.max", _limit(swap_max) + "\n")
        if pressure is not None:
            self.set_pressure(rel, *pressure)
        if io_pressure is not None:
            self.set_pressure(rel, *io_pressure, resource="io")
        if stat is not None:
            self.write(rel, "memory.stat", "".join(f"{k} {v}\n" for k, v in stat.items()))
        if procs is not None:
            self.set_procs(rel, procs)
        if populated is not None:
            self.write(rel, "cgroup.events", f"populated {int(populated)}\nfrozen 0\n")
        if oom_group is not None:
            self.write(rel, "memory.oom.group", f"{int(oom_group)}\n")
        if nr_dying is not None:
            self.write(rel, "cgroup.stat", f"nr_descendants 0\nnr_dying_descendants {nr_dying}\n")
        return d

    def set_pressure(
        self,
        rel: str,
        avg10: float,
        avg60: float = 0.0,
        avg300: float = 0.0,
        total: int = 0,
        resource: str = "memory",
    ) -> None:
        self.write(rel, f"{resource}.pressure", psi_text(avg10, avg60, avg300, total))

    def set_current(self, rel: str, current: int) -> None:
        self.write(rel, "memory.current", f"{current}\n")

    def set_procs(self, rel: str, pids: Iterable[int]) -> None:
        self.write(rel, "cgroup.procs", "".join(f"{p}\n" for p in pids))

    def set_xattr(self, rel: str, name: str, value: bytes = b"") -> None:
        os.setxattr(self.path(rel), name, value)

    def get_xattr(self, rel: str, name: str) -> bytes | None:
        try:
            return os.getxattr(self.path(rel), name)
        except OSError:
            return None

    def remove(self, rel: str) -> None:
        shutil.rmtree(self.path(rel))


class FakeProc:
    """The /proc files the daemon reads about the host."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "pressure").mkdir(parents=True, exist_ok=True)
        self.meminfo()
        self.pressure("memory")
        self.pressure("io")
        (root / "swaps").write_text("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")

    @property
    def path(self) -> str:
        return str(self.root)

    def meminfo(
        self,
        total: int = 8 << 30,
        free: int = 4 << 30,
        swap_total: int = 0,
        swap_free: int = 0,
        **extra: int,
    ) -> None:
        """Values in bytes (written in kB, as the kernel does)."""
        values = {
            "MemTotal": total,
            "MemFree": free,
            "SwapTotal": swap_total,
            "SwapFree": swap_free,
            **extra,
        }
        (self.root / "meminfo").write_text(
            "".join(f"{k}:{v // 1024:>16} kB\n" for k, v in values.items())
        )

    def pressure(
        self, resource: str, avg10: float = 0.0, avg60: float = 0.0, avg300: float = 0.0
    ) -> None:
        from tests.support.tree import psi_text

        (self.root / "pressure" / resource).write_text(psi_text(avg10, avg60, avg300))

    def swaps(self, *devices: tuple[int, int]) -> None:
        """Each device as (size, used) in bytes."""
        lines = ["Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority"]
        for i, (size, used) in enumerate(devices):
            lines.append(
                f"/swap{i}                               \tfile\t\t{size // 1024}\t\t{used // 1024}\t\t-2"
            )
        (self.root / "swaps").write_text("\n".join(lines) + "\n")

    def vmstat(self, **values: int) -> None:
        (self.root / "vmstat").write_text("".join(f"{k} {v}\n" for k, v in values.items()))
