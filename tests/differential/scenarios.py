"""The differential scenarios: each a fake tree, a config valid for both upstream 0.5.0
and us, and the kill lines we expect.

Designed so that upstream's choice is deterministic: no exact ties in any ranking
(upstream breaks ties arbitrarily), and no dependence on 0.5.0-vs-HEAD differences
unless the scenario is one that documents a difference (``upstream_victims``).
Counters that must grow between ticks (``pgscan``, ``io.stat``) are advanced by
``advance`` every 0.1 s while the daemons run, at rates far apart so that a tick
boundary falling mid-step cannot reorder them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.procs import LiveProcs, Spawner
from tests.support.tree import FakeTree

MB = 1 << 20


@dataclass
class Side:
    """One implementation's world: its own fake tree and its own processes."""

    name: str
    work: Path
    tree: FakeTree
    spawner: Spawner
    live: LiveProcs

    @classmethod
    def make(cls, name: str, work: Path, spawner: Spawner) -> Side:
        work.mkdir(parents=True)
        tree = FakeTree(work / "cgroup")
        return cls(name, work, tree, spawner, LiveProcs(tree))

    def cg(self, rel: str, *, procs: int = 0, xattr: str | None = None, **kw: Any) -> None:
        """A cgroup (FakeTree.cgroup arguments), ``procs`` spawned sleepers listed in
        it, and ``xattr`` ("prefer"/"avoid") set as ``trusted.oomd_<xattr>``. A
        memory.stat always has ``pgscan``, as the kernel's (upstream crashes without),
        and ``cgroup.procs`` always exists."""
        if "stat" in kw:
            kw["stat"] = {**kw["stat"], "pgscan": kw["stat"].get("pgscan", 0)}
        self.tree.cgroup(rel, **kw)
        procs_file = self.tree.path(rel) / "cgroup.procs"
        if not procs_file.exists():
            procs_file.write_text("")  # every real cgroup has one (upstream needs it)
        if xattr is not None:
            self.tree.set_xattr(rel, f"trusted.oomd_{xattr}")
        for _ in range(procs):
            self.live.add(rel, self.spawner.sleeper())

    def pids_under(self, rels: tuple[str, ...]) -> set[int]:
        """Pids of the processes listed at or below any of ``rels``."""
        return {
            child.pid
            for rel, children in self.live.members.items()
            for child in children
            if any(rel == r or rel.startswith(r + "/") for r in rels)
        }

    def all_pids(self) -> set[int]:
        return {child.pid for children in self.live.members.values() for child in children}

    def stat(self, rel: str, **values: int) -> None:
        self.tree.write_atomic(rel, "memory.stat", "".join(f"{k} {v}\n" for k, v in values.items()))

    def io(self, rel: str, *lines: tuple[str, int, int]) -> None:
        """io.stat with (device, rios, wios) per line."""
        self.tree.write_atomic(
            rel,
            "io.stat",
            "".join(
                f"{dev} rbytes=0 wbytes=0 rios={r} wios={w} dbytes=0 dios=0\n"
                for dev, r, w in lines
            ),
        )


def block_device() -> str | None:
    """A ``major:minor`` of this host that ``--device`` accepts (both implementations
    check /sys/dev/block/<id>/queue/rotational), or None."""
    root = "/sys/dev/block"
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return None
    for name in names:
        try:
            with open(f"{root}/{name}/queue/rotational") as f:
                if f.read().strip() in ("0", "1"):
                    return name
        except OSError:
            continue
    return None


def pressure_above(cgroup: str = "workload.slice", duration: int = 0) -> dict[str, Any]:
    return {
        "name": "pressure_above",
        "args": {
            "cgroup": cgroup,
            "resource": "memory",
            "threshold": "40",
            "duration": str(duration),
        },
    }


def kill(name: str, cgroup: str = "workload.slice/*", **args: Any) -> dict[str, Any]:
    values = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in args.items()}
    return {"name": name, "args": {"cgroup": cgroup, **values}}


def config(*actions: dict[str, Any], duration: int = 0) -> dict[str, Any]:
    """One ruleset "diff" whose group "hot" fires while workload.slice is under 60%
    memory pressure (from the first tick, or the second with ``duration`` 1)."""
    return {
        "rulesets": [
            {
                "name": "diff",
                "detectors": [["hot", pressure_above(duration=duration)]],
                "actions": list(actions),
            }
        ]
    }


def hot(side: Side) -> None:
    side.cg("workload.slice", pressure=(60, 50, 40))


def line(
    victim: str,
    usage: int,
    killer: str,
    *,
    dry: bool = True,
    psi: str = "0.00 0.00 0.00",
    ruleset: str = "diff",
    group: str = "hot",
) -> str:
    return (
        f"oomd kill: {psi} {victim} {usage} ruleset:[{ruleset}] detectorgroup:[{group}] "
        f"killer:{'(dry)' if dry else ''}{killer} v2"
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    doc: str
    build: Callable[[Side], None]
    config: dict[str, Any]
    #: Our kill lines, in order (compared with the first len(expect) lines).
    expect: tuple[str, ...]
    #: Cgroups whose processes must die (with their descendants); all others live.
    killed: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    #: Contents of a fake /proc/meminfo both daemons see, if any.
    meminfo: str | None = None
    advance: Callable[[Side, int], None] | None = None
    #: Observe this many seconds and compare every line (for "exactly N" scenarios).
    window: float | None = None
    #: A documented deliberate difference: upstream 0.5.0's lines instead of ours.
    upstream_expect: tuple[str, ...] | None = None
    difference: str = ""
    needs: tuple[str, ...] = field(default=())


def meminfo(swap_total: int, mem_total: int = 16 << 30) -> str:
    return (
        f"MemTotal:       {mem_total >> 10} kB\nMemFree:        {mem_total >> 11} kB\n"
        f"SwapTotal:      {swap_total >> 10} kB\nSwapFree:       {swap_total >> 11} kB\n"
    )


# --- kill_by_memory_size_or_growth ---------------------------------------------------

MG = "kill_by_memory_size_or_growth"


def _mg_three(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/a", current=100 * MB, stat={"anon": 1})
    side.cg("workload.slice/b", current=400 * MB, stat={"anon": 1}, pressure=(3.5, 2.25, 1))
    side.cg("workload.slice/c", current=50 * MB, stat={"anon": 1})


def _mg_real(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/a", current=100 * MB, stat={"anon": 1}, procs=1)
    side.cg("workload.slice/b", current=400 * MB, stat={"anon": 1}, procs=2)
    side.cg("workload.slice/c", current=50 * MB, stat={"anon": 1}, procs=1)


def _mg_protection(side: Side) -> None:
    side.cg("workload.slice", pressure=(60, 50, 40), current=600 * MB, low=600 * MB)
    side.cg("workload.slice/a", current=300 * MB, low=250 * MB, stat={"anon": 1})
    side.cg("workload.slice/b", current=200 * MB, stat={"anon": 1})
    side.cg("workload.slice/c", current=100 * MB, stat={"anon": 1})


def _mg_prefs(prefer: str | None, avoid: str | None) -> Callable[[Side], None]:
    def build(side: Side) -> None:
        hot(side)
        for rel, usage in (("a", 400), ("b", 100), ("c", 50)):
            xattr = "prefer" if rel == prefer else "avoid" if rel == avoid else None
            side.cg(f"workload.slice/{rel}", current=usage * MB, stat={"anon": 1}, xattr=xattr)

    return build


def _mg_recursive(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/A", current=500 * MB, stat={"anon": 1})
    side.cg("workload.slice/A/x", current=100 * MB, stat={"anon": 1})
    side.cg("workload.slice/A/y", current=300 * MB, stat={"anon": 1})
    side.cg("workload.slice/B", current=200 * MB, stat={"anon": 1})


def _mg_oom_group(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/G", current=500 * MB, stat={"anon": 1}, oom_group=True)
    side.cg("workload.slice/G/x", current=200 * MB, stat={"anon": 1}, procs=1)
    side.cg("workload.slice/G/y", current=300 * MB, stat={"anon": 1}, procs=2)
    side.cg("workload.slice/B", current=200 * MB, stat={"anon": 1}, procs=1)


def _mg_unpopulated(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/A", current=500 * MB, stat={"anon": 1})
    side.cg("workload.slice/A/x", current=400 * MB, stat={"anon": 1}, populated=False)
    side.cg("workload.slice/A/y", current=100 * MB, stat={"anon": 1}, populated=True)
    side.cg("workload.slice/B", current=200 * MB, stat={"anon": 1})


def _mg_patterns(side: Side) -> None:
    hot(side)
    side.cg("a.slice/x", current=100 * MB, stat={"anon": 1})
    side.cg("b.slice/y", current=300 * MB, stat={"anon": 1})
    side.cg("c.slice/z", current=900 * MB, stat={"anon": 1})


def _mg_anon_zero(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/a", current=400 * MB, stat={"anon": 0, "file": 400 * MB})
    side.cg("workload.slice/b", current=100 * MB, stat={"anon": 1})


def _two_rulesets(side: Side) -> None:
    hot(side)
    side.cg("calm.slice", pressure=(5, 5, 5))
    side.cg("workload.slice/a", current=100 * MB, stat={"anon": 1})
    side.cg("workload.slice/b", current=300 * MB, stat={"anon": 1})


TWO_RULESETS = {
    "rulesets": [
        {
            "name": "quiet",
            "detectors": [["calm", pressure_above("calm.slice")]],
            "actions": [kill(MG, dry=True)],
        },
        {
            "name": "loud",
            "detectors": [
                ["g-a", pressure_above("calm.slice")],
                ["g-b", pressure_above()],
            ],
            "actions": [kill(MG, dry=True)],
        },
    ]
}


# --- kill_by_swap_usage ----------------------------------------------------------------

SW = "kill_by_swap_usage"


def _sw_three(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/a", current=10 * MB, swap=20 * MB, stat={"anon": 1})
    side.cg("workload.slice/b", current=20 * MB, swap=60 * MB, stat={"anon": 1})
    side.cg("workload.slice/c", current=30 * MB, swap=40 * MB, stat={"anon": 1})


def _sw_avoided(big_swap: int) -> Callable[[Side], None]:
    """A (big swap, AVOID) and B (60 MiB, NORMAL): B wins unless the threshold
    excludes it; C uses no swap."""

    def build(side: Side) -> None:
        hot(side)
        side.cg("workload.slice/A", current=10 * MB, swap=big_swap, stat={"anon": 1}, xattr="avoid")
        side.cg("workload.slice/B", current=20 * MB, swap=60 * MB, stat={"anon": 1})
        side.cg("workload.slice/C", current=30 * MB, swap=0, stat={"anon": 1})

    return build


def _sw_equal(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/A", current=10 * MB, swap=100 * MB, stat={"anon": 1}, xattr="prefer")
    side.cg("workload.slice/B", current=20 * MB, swap=200 * MB, stat={"anon": 1})


def _sw_recursive(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/A", current=10 * MB, swap=300 * MB, stat={"anon": 1})
    side.cg("workload.slice/A/x", current=20 * MB, swap=50 * MB, stat={"anon": 1})
    side.cg("workload.slice/A/y", current=30 * MB, swap=250 * MB, stat={"anon": 1})
    side.cg("workload.slice/B", current=40 * MB, swap=100 * MB, stat={"anon": 1})


def _sw_real(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/a", current=10 * MB, swap=10 * MB, stat={"anon": 1}, procs=1)
    side.cg("workload.slice/b", current=20 * MB, swap=90 * MB, stat={"anon": 1}, procs=2)


def _sw_none(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/a", current=10 * MB, swap=0, stat={"anon": 1})
    side.cg("workload.slice/b", current=20 * MB, stat={"anon": 1})


# --- kill_by_pressure -----------------------------------------------------------------

PR = "kill_by_pressure"


def _pr_three(side: Side) -> None:
    hot(side)
    side.cg(
        "workload.slice/a",
        current=10 * MB,
        stat={"anon": 1},
        pressure=(10, 90, 1),
        io_pressure=(5, 5, 5),
    )
    side.cg(
        "workload.slice/b",
        current=20 * MB,
        stat={"anon": 1},
        pressure=(60, 30, 2),
        io_pressure=(20, 20, 20),
    )
    side.cg(
        "workload.slice/c",
        current=30 * MB,
        stat={"anon": 1},
        pressure=(80, 0, 3),
        io_pressure=(70, 50, 1),
    )


def _pr_prefer(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/a", current=10 * MB, stat={"anon": 1}, pressure=(90, 90, 9))
    side.cg(
        "workload.slice/b", current=20 * MB, stat={"anon": 1}, pressure=(10, 10, 1), xattr="prefer"
    )


def _pr_real(side: Side) -> None:
    hot(side)
    side.cg("workload.slice/a", current=10 * MB, stat={"anon": 1}, pressure=(10, 20, 1), procs=1)
    side.cg("workload.slice/b", current=20 * MB, stat={"anon": 1}, pressure=(70, 50, 3), procs=2)


def _pr_and_swap(side: Side) -> None:
    hot(side)
    side.cg(
        "workload.slice/a", current=10 * MB, swap=90 * MB, stat={"anon": 1}, pressure=(10, 10, 0)
    )
    side.cg(
        "workload.slice/b", current=20 * MB, swap=5 * MB, stat={"anon": 1}, pressure=(70, 50, 0)
    )


# --- kill_by_pg_scan -------------------------------------------------------------------

PG = "kill_by_pg_scan"
PG_RATES = {"workload.slice/a": 100, "workload.slice/b": 10000, "workload.slice/c": 1000}


def _pg_build(
    rates: dict[str, int], prefer: str | None = None, procs: int = 0
) -> Callable[[Side], None]:
    def build(side: Side) -> None:
        hot(side)
        for i, rel in enumerate(sorted(rates)):
            side.cg(
                rel, current=(i + 1) * MB, xattr="prefer" if rel == prefer else None, procs=procs
            )
            side.stat(rel, anon=1, pgscan=1000)

    return build


def _pg_advance(rates: dict[str, int]) -> Callable[[Side, int], None]:
    def advance(side: Side, step: int) -> None:
        for rel, rate in rates.items():
            side.stat(rel, anon=1, pgscan=1000 + rate * step)

    return advance


PG_TREE = {
    "workload.slice/A": 5000,
    "workload.slice/A/x": 1000,
    "workload.slice/A/y": 4000,
    "workload.slice/B": 3000,
}
PG_PREFER = {"workload.slice/a": 0, "workload.slice/b": 1000}


# --- kill_by_io_cost ---------------------------------------------------------------

IO = "kill_by_io_cost"
DEV = block_device()
OTHER_DEV = "4095:4095" if DEV != "4095:4095" else "4094:4094"
IO_RATES = {  # (rios, wios) per 0.1 s step
    "workload.slice/a": (10, 300),
    "workload.slice/b": (100, 0),
    "workload.slice/c": (50, 50),
}


def _io_build(procs: int = 0) -> Callable[[Side], None]:
    def build(side: Side) -> None:
        hot(side)
        for i, rel in enumerate(sorted(IO_RATES)):
            side.cg(rel, current=(i + 1) * MB, stat={"anon": 1}, procs=procs)
            side.io(rel, (str(DEV), 0, 0), (OTHER_DEV, 0, 0))

    return build


def _io_advance(side: Side, step: int) -> None:
    for rel, (reads, writes) in IO_RATES.items():
        # Heavy traffic on a device not given with --device must not count.
        side.io(rel, (str(DEV), reads * step, writes * step), (OTHER_DEV, 9999 * step, 9999 * step))


def _io_args(coeffs: str) -> tuple[str, ...]:
    return ("--device", str(DEV), "--ssd-coeffs", coeffs, "--hdd-coeffs", coeffs)


# --- the list --------------------------------------------------------------------------

SCENARIOS: list[Scenario] = [
    Scenario(
        "mg_size",
        "the biggest cgroup (over 50% of its peers' total) dies; kill line fields",
        _mg_three,
        config(kill(MG, dry=True)),
        (line("workload.slice/b", 400 * MB, MG, psi="3.50 2.25 1.00"),),
    ),
    Scenario(
        "mg_size_real",
        "a real kill: exactly the victim's two processes die",
        _mg_real,
        config(kill(MG)),
        (line("workload.slice/b", 400 * MB, MG, dry=False),),
        killed=("workload.slice/b",),
    ),
    Scenario(
        "mg_memory_low",
        "memory.low protection is subtracted: a (300 MB, 250 protected) loses to b",
        _mg_protection,
        config(kill(MG, dry=True, size_threshold=60)),
        (line("workload.slice/b", 200 * MB, MG),),
    ),
    Scenario(
        "mg_prefer",
        "trusted.oomd_prefer beats size",
        _mg_prefs("b", None),
        config(kill(MG, dry=True)),
        (line("workload.slice/b", 100 * MB, MG),),
    ),
    Scenario(
        "mg_avoid",
        "trusted.oomd_avoid on the biggest hands the kill to the next",
        _mg_prefs(None, "a"),
        config(kill(MG, dry=True)),
        (line("workload.slice/b", 100 * MB, MG),),
    ),
    Scenario(
        "mg_recursive",
        "recursive descends to the best leaf",
        _mg_recursive,
        config(kill(MG, dry=True, recursive="true")),
        (line("workload.slice/A/y", 300 * MB, MG),),
    ),
    Scenario(
        "mg_oom_group_real",
        "recursive stops at memory.oom.group=1 and kills the group with its children",
        _mg_oom_group,
        config(kill(MG, recursive="true")),
        (line("workload.slice/G", 500 * MB, MG, dry=False),),
        killed=("workload.slice/G",),
    ),
    Scenario(
        "mg_recursive_unpopulated",
        "a leaf whose cgroup.events says populated 0 is skipped",
        _mg_unpopulated,
        config(kill(MG, dry=True, recursive="true")),
        (line("workload.slice/A/y", 100 * MB, MG),),
    ),
    Scenario(
        "mg_multi_pattern",
        "a comma-separated cgroup list is one peer group; others are not candidates",
        _mg_patterns,
        config(kill(MG, cgroup="a.slice/*,b.slice/*", dry=True)),
        (line("b.slice/y", 300 * MB, MG),),
    ),
    Scenario(
        "mg_anon_zero",
        "a candidate with memory.stat anon 0 is skipped",
        _mg_anon_zero,
        config(kill(MG, dry=True)),
        (line("workload.slice/b", 100 * MB, MG),),
        upstream_expect=(line("workload.slice/a", 400 * MB, MG),),
        difference="upstream HEAD skips anon=0 candidates (we follow HEAD); 0.5.0 kills them",
    ),
    Scenario(
        "rulesets_and_groups",
        "the kill line names the ruleset and the detector group that fired",
        _two_rulesets,
        TWO_RULESETS,
        (line("workload.slice/b", 300 * MB, MG, ruleset="loud", group="g-b"),),
    ),
    Scenario(
        "post_action_delay_0",
        "post_action_delay=0: no pause, a (dry) kill every tick",
        _mg_three,
        config(kill(MG, dry=True, post_action_delay=0)),
        (line("workload.slice/b", 400 * MB, MG, psi="3.50 2.25 1.00"),) * 3,
    ),
    Scenario(
        "post_action_delay_60",
        "post_action_delay=60: exactly one kill in 3.5 s",
        _mg_three,
        config(kill(MG, dry=True, post_action_delay=60)),
        (line("workload.slice/b", 400 * MB, MG, psi="3.50 2.25 1.00"),),
        window=3.5,
    ),
    Scenario(
        "sw_biggest",
        "the biggest swap user dies",
        _sw_three,
        config(kill(SW, dry=True)),
        (line("workload.slice/b", 20 * MB, SW),),
    ),
    Scenario(
        "sw_threshold_mib",
        'a bare threshold is MiB ("100"): B is filtered out before preferences apply',
        _sw_avoided(150 * MB),
        config(kill(SW, dry=True, threshold="100")),
        (line("workload.slice/A", 10 * MB, SW),),
    ),
    Scenario(
        "sw_threshold_percent",
        '"10%" of a 1 GiB SwapTotal (fake /proc/meminfo) is 102 MiB',
        _sw_avoided(150 * MB),
        config(kill(SW, dry=True, threshold="10%")),
        (line("workload.slice/A", 10 * MB, SW),),
        meminfo=meminfo(1 << 30),
    ),
    Scenario(
        "sw_threshold_percent_4g",
        '"10%" of a 4 GiB SwapTotal is 409.6 MiB',
        _sw_avoided(500 * MB),
        config(kill(SW, dry=True, threshold="10%")),
        (line("workload.slice/A", 10 * MB, SW),),
        meminfo=meminfo(4 << 30),
        upstream_expect=(line("workload.slice/B", 20 * MB, SW),),
        difference="upstream reads SwapTotal into a 32-bit int: 4 GiB wraps to 0, so 10% is 0",
    ),
    Scenario(
        "sw_threshold_equal",
        "swap exactly at the threshold does not qualify (swap > threshold)",
        _sw_equal,
        config(kill(SW, dry=True, threshold="100")),
        (line("workload.slice/B", 20 * MB, SW),),
        upstream_expect=(line("workload.slice/A", 10 * MB, SW),),
        difference="upstream HEAD compares swap > threshold (we follow HEAD); 0.5.0 uses >=",
    ),
    Scenario(
        "sw_recursive",
        "recursive swap ranking picks the biggest leaf of the biggest subtree",
        _sw_recursive,
        config(kill(SW, dry=True, recursive="true")),
        (line("workload.slice/A/y", 30 * MB, SW),),
    ),
    Scenario(
        "sw_real",
        "a real kill of the biggest swap user",
        _sw_real,
        config(kill(SW)),
        (line("workload.slice/b", 20 * MB, SW, dry=False),),
        killed=("workload.slice/b",),
    ),
    Scenario(
        "sw_no_swap",
        "nobody uses swap: no kill at all",
        _sw_none,
        config(kill(SW, dry=True)),
        (),
        window=3.5,
    ),
    Scenario(
        "pr_memory",
        "memory: int(avg10/2 + avg60/2) of the full line ranks a (50) over b (45), c (40)",
        _pr_three,
        config(kill(PR, dry=True, resource="memory")),
        (line("workload.slice/a", 10 * MB, PR, psi="10.00 90.00 1.00"),),
    ),
    Scenario(
        "pr_io",
        "io: the same tree ranked by io pressure picks c",
        _pr_three,
        config(kill(PR, dry=True, resource="io")),
        (line("workload.slice/c", 30 * MB, PR, psi="80.00 0.00 3.00"),),
    ),
    Scenario(
        "pr_prefer",
        "trusted.oomd_prefer beats pressure",
        _pr_prefer,
        config(kill(PR, dry=True, resource="memory")),
        (line("workload.slice/b", 20 * MB, PR, psi="10.00 10.00 1.00"),),
    ),
    Scenario(
        "pr_real",
        "a real kill of the most pressured cgroup",
        _pr_real,
        config(kill(PR, resource="memory")),
        (line("workload.slice/b", 20 * MB, PR, dry=False, psi="70.00 50.00 3.00"),),
        killed=("workload.slice/b",),
    ),
    Scenario(
        "always_continue_chain",
        "always_continue: after its kill the chain goes on to the next action",
        _pr_and_swap,
        config(kill(PR, dry=True, resource="memory", always_continue="true"), kill(SW, dry=True)),
        (
            line("workload.slice/b", 20 * MB, PR, psi="70.00 50.00 0.00"),
            line("workload.slice/a", 10 * MB, SW, psi="10.00 10.00 0.00"),
        ),
    ),
    Scenario(
        "pg_highest",
        "the first firing collects pgscan, the next tick kills the fastest scanner",
        _pg_build(PG_RATES),
        config(kill(PG, dry=True)),
        (line("workload.slice/b", 2 * MB, PG),),
        advance=_pg_advance(PG_RATES),
    ),
    Scenario(
        "pg_recursive",
        "recursive pg scan ranking at each level",
        _pg_build(PG_TREE),
        config(kill(PG, dry=True, recursive="true")),
        (line("workload.slice/A/y", 3 * MB, PG),),
        advance=_pg_advance(PG_TREE),
    ),
    Scenario(
        "pg_real",
        "a real kill of the fastest scanner",
        _pg_build(PG_RATES, procs=1),
        config(kill(PG)),
        (line("workload.slice/b", 2 * MB, PG, dry=False),),
        killed=("workload.slice/b",),
        advance=_pg_advance(PG_RATES),
    ),
    Scenario(
        "pg_zero_rate_prefer",
        "a PREFER cgroup that scans nothing is not a candidate",
        _pg_build(PG_PREFER, prefer="workload.slice/a"),
        config(kill(PG, dry=True)),
        (line("workload.slice/b", 2 * MB, PG),),
        advance=_pg_advance(PG_PREFER),
        upstream_expect=(line("workload.slice/a", 1 * MB, PG),),
        difference="upstream HEAD drops pg scan rates <= 0 (we follow HEAD); 0.5.0 keeps them",
    ),
    Scenario(
        "io_read_iops",
        "--device and read-iops-only coefficients: the biggest reader dies",
        _io_build(),
        config(kill(IO, dry=True), duration=1),
        (line("workload.slice/b", 2 * MB, IO),),
        args=_io_args("1"),
        advance=_io_advance,
        needs=("block device",),
    ),
    Scenario(
        "io_write_iops",
        "the same traffic with write-iops-only coefficients: the biggest writer dies",
        _io_build(),
        config(kill(IO, dry=True), duration=1),
        (line("workload.slice/a", 1 * MB, IO),),
        args=_io_args("0,0,1"),
        advance=_io_advance,
        needs=("block device",),
    ),
    Scenario(
        "io_real",
        "a real kill by io cost: exactly the biggest writer's process dies",
        _io_build(procs=1),
        config(kill(IO), duration=1),
        (line("workload.slice/a", 1 * MB, IO, dry=False),),
        killed=("workload.slice/a",),
        args=_io_args("0,0,1"),
        advance=_io_advance,
        needs=("block device",),
    ),
]
