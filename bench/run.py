#!/usr/bin/env python3
"""Per-tick cost of our oomd and of upstream's (Debian's 0.5.0) on the same fake trees.

For each tree (100, 1,000 and 10,000 leaf cgroups, one level or two levels deep) and
each config ("read": dump_cgroup_overview always=true on every leaf; "rank": a
pressure_above detector over every leaf that fires every tick, and a dry
kill_by_memory_size_or_growth with post_action_delay 0 ranking every leaf), each daemon
runs as a real process at ``-i 1`` with the tree bind-mounted over the host's cgroup2
mount inside ``unshare -m`` (as tests/differential does), and we print:

* CPU s/tick: utime+stime of the process (all threads) over N completed ticks / N;
* wall/tick: on-CPU + run-queue time of the main thread (``/proc/PID/task/PID/schedstat``)
  over the same ticks / N (for upstream also the tick period minus the interval);
* peak RSS: ``VmHWM`` at the end of the run;
* first tick: from just before ``exec`` to the first tick's output (upstream sleeps
  one interval before its first tick; the table shows its time minus that interval).

A tick is counted when its output appears: the kmsg line of the dry kill ("rank", one
per tick with post_action_delay 0) or the overview line of the last leaf ("read").
Runs are sequential (never two daemons at once). See bench/README.md.

Needs root, unshare(1) and a cgroup2 mount; runs upstream when /usr/bin/oomd (or
$OOMD_UPSTREAM) is its ELF binary. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
INTERVAL = 1

MEMORY_STAT_KEYS = [
    "anon",
    "file",
    "kernel",
    "kernel_stack",
    "pagetables",
    "sec_pagetables",
    "percpu",
    "sock",
    "vmalloc",
    "shmem",
    "zswap",
    "zswapped",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "swapcached",
    "anon_thp",
    "file_thp",
    "shmem_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "slab",
    "workingset_refault_anon",
    "workingset_refault_file",
    "workingset_activate_anon",
    "workingset_activate_file",
    "workingset_restore_anon",
    "workingset_restore_file",
    "workingset_nodereclaim",
    "pgscan",
    "pgsteal",
    "pgscan_kswapd",
    "pgscan_direct",
    "pgscan_khugepaged",
    "pgsteal_kswapd",
    "pgsteal_direct",
    "pgsteal_khugepaged",
    "pgfault",
    "pgmajfault",
    "pgrefill",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "zswpin",
    "zswpout",
    "thp_fault_alloc",
    "thp_collapse_alloc",
]


# --- trees -------------------------------------------------------------------------


def _psi(avg10: float, total: int) -> bytes:
    return (
        f"some avg10={avg10:.2f} avg60={avg10 / 2:.2f} avg300={avg10 / 4:.2f} total={total * 2}\n"
        f"full avg10={avg10:.2f} avg60={avg10 / 2:.2f} avg300={avg10 / 4:.2f} total={total}\n"
    ).encode()


def _put(directory: str, name: str, data: bytes) -> None:
    fd = os.open(f"{directory}/{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _cgroup(directory: str, index: int, current: int) -> None:
    """A cgroup directory with the files a kernel memory-controller cgroup has that
    either daemon may read."""
    os.mkdir(directory)
    anon = current * 3 // 4
    stat = {key: 0 for key in MEMORY_STAT_KEYS}
    stat.update(anon=anon, file=current - anon, active_anon=anon, pgscan=index * 13)
    files = {
        "cgroup.controllers": b"cpu io memory pids\n",
        "cgroup.subtree_control": b"",
        "cgroup.events": b"populated 1\nfrozen 0\n",
        "cgroup.procs": b"",  # never anything a dry run could signal
        "cgroup.stat": b"nr_descendants 0\nnr_dying_descendants 0\n",
        "memory.current": b"%d\n" % current,
        "memory.low": b"0\n",
        "memory.min": b"0\n",
        "memory.high": b"max\n",
        "memory.max": b"max\n",
        "memory.swap.current": b"0\n",
        "memory.swap.max": b"max\n",
        "memory.oom.group": b"0\n",
        "memory.stat": "".join(f"{k} {v}\n" for k, v in stat.items()).encode(),
        # Below 1%: not "negligible"-relevant for either daemon's context dump.
        "memory.pressure": _psi((index % 97) / 100, index * 1000),
        "io.pressure": _psi(0.0, 0),
        "io.stat": b"",
    }
    for name, data in files.items():
        _put(directory, name, data)


def _usage(index: int) -> int:
    """1-16 MiB, every 100th leaf 64-1,000 MiB: a few non-negligible cgroups."""
    if index % 100 == 7:
        return (64 + (index * 7919) % 936) << 20
    return (1 + (index * 7919) % 16) << 20


def layout(leaves: int, depth: int) -> list[str]:
    """Leaf paths: ``workload.slice/cgN`` (depth 1) or ``workload.slice/pM/cgN`` with
    ceil(sqrt(leaves)) parents sharing the leaves evenly (depth 2)."""
    if depth == 1:
        return [f"workload.slice/cg{i}" for i in range(leaves)]
    parents = math.ceil(math.sqrt(leaves))
    return [f"workload.slice/p{i % parents}/cg{i}" for i in range(leaves)]


def build_tree(root: str, leaves: int, depth: int) -> list[str]:
    os.makedirs(root)
    _put(root, "cgroup.controllers", b"cpu io memory pids\n")
    _put(root, "cgroup.procs", b"")
    paths = layout(leaves, depth)
    made: set[str] = set()
    for i, rel in enumerate(paths):
        parts = rel.split("/")
        for k in range(1, len(parts)):
            parent = "/".join(parts[:k])
            if parent not in made:
                _cgroup(f"{root}/{parent}", 0, 1 << 30)
                made.add(parent)
        _cgroup(f"{root}/{rel}", i, _usage(i))
    return paths


# --- configs -----------------------------------------------------------------------


def config(kind: str, depth: int) -> dict[str, object]:
    leaves = "workload.slice/*" if depth == 1 else "workload.slice/*/*"
    if kind == "read":
        return {
            "rulesets": [
                {
                    "name": "read",
                    "detectors": [
                        [
                            "overview",
                            {
                                "name": "dump_cgroup_overview",
                                "args": {"cgroup": leaves, "always": "true"},
                            },
                        ]
                    ],
                    "actions": [{"name": "continue", "args": {}}],
                }
            ]
        }
    return {
        "rulesets": [
            {
                "name": "rank",
                "detectors": [
                    [
                        "pressure",
                        {
                            "name": "pressure_above",
                            "args": {
                                "cgroup": leaves,
                                "resource": "memory",
                                "threshold": "0",
                                "duration": "0",
                            },
                        },
                    ]
                ],
                "actions": [
                    {
                        "name": "kill_by_memory_size_or_growth",
                        "args": {"cgroup": leaves, "dry": "true", "post_action_delay": "0"},
                    }
                ],
            }
        ]
    }


# --- running a daemon ----------------------------------------------------------------


def cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[:1] == ["cgroup2"]:
                return left.split()[4]
    return None


def upstream_binary() -> str | None:
    path = os.environ.get("OOMD_UPSTREAM", "/usr/bin/oomd")
    try:
        with open(path, "rb") as f:
            return path if f.read(4) == b"\x7fELF" else None
    except OSError:
        return None


def our_binary(python: str) -> list[str]:
    """``python -m oomd`` from this checkout's src (PYTHONPATH is set in _env), or with
    ``venv``, the checkout's installed console script."""
    if python == "venv":
        script = REPO / ".venv" / "bin" / "oomd"
        return [str(script)] if script.exists() else [sys.executable, "-m", "oomd"]
    return [python, "-m", "oomd"]


def default_python() -> str:
    """The system's python3 when it is recent enough (what a distribution package of
    oomd runs on), else this checkout's venv. The venv is not the default because
    ``make test`` installs the example third-party plugin package in it, and a daemon
    that finds third-party entry points loads importlib.metadata (3 MiB)."""
    system = "/usr/bin/python3"
    return system if _python_says(system, "sys.version_info >= (3, 11)") == "True" else "venv"


def _python_says(executable: str, expression: str) -> str | None:
    """What ``executable`` prints for a Python expression (None if it cannot run)."""
    try:
        return subprocess.run(
            [executable, "-c", f"import sys, platform; print({expression})"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (whole process)


def _sched_ns(pid: int) -> int:
    with open(f"/proc/{pid}/task/{pid}/schedstat", encoding="ascii") as f:
        run, wait, _ = f.read().split()
    return int(run) + int(wait)


def _oncpu_ns(pid: int) -> int:
    """On-CPU time of the main (tick) thread only: what a tick costs, whatever else
    runs on the machine."""
    with open(f"/proc/{pid}/task/{pid}/schedstat", encoding="ascii") as f:
        return int(f.read().split()[0])


def _hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class TickCounter:
    """Counts occurrences of ``marker`` in a growing file, reading only what is new."""

    def __init__(self, path: Path, marker: bytes) -> None:
        self.path = path
        self.marker = marker
        self.offset = 0
        self.count = 0
        self.tail = b""

    def poll(self) -> int:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return self.count
        if data:
            self.offset += len(data)
            buf = self.tail + data
            cut = buf.rfind(b"\n") + 1
            self.count += buf[:cut].count(self.marker)
            self.tail = buf[cut:]
        return self.count


@dataclass
class Result:
    ticks: int = 0
    cpu_s: float | None = None
    wall_s: float | None = None
    thread_cpu_s: float | None = None
    period_wall_s: float | None = None
    hwm_mib: float | None = None
    first_tick_s: float | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def run_daemon(
    argv: list[str],
    tree: str,
    mount_point: str,
    work: Path,
    marker: bytes,
    counter_file: str,
    ticks: int,
    warmup: int,
    first_timeout: float,
    budget: float,
    subtract_interval: bool,
    env: dict[str, str] | None = None,
    observe_port: int | None = None,
) -> Result:
    """Start one daemon on ``tree`` and measure it (see the module docstring).
    ``observe_port``: the daemon serves metrics there, and a client asks it for
    ``oomd status`` and scrapes ``/metrics`` once a second while it is measured."""
    work.mkdir(parents=True, exist_ok=True)
    kmsg = work / "kmsg"
    kmsg.touch()
    stderr_path = work / "stderr"
    stamp = work / "exec-time"
    inner = " ".join(
        shlex.quote(a)
        for a in [
            *argv,
            "-i",
            str(INTERVAL),
            "-f",
            mount_point,
            "-D",
            str(work / "run"),
            "--kmsg-override",
            str(kmsg),
        ]
    )
    script = (
        f"mount --bind {shlex.quote(tree)} {shlex.quote(mount_point)} && "
        f"date +%s.%N > {shlex.quote(str(stamp))} && exec {inner}"
    )
    counter = TickCounter(kmsg if counter_file == "kmsg" else stderr_path, marker)
    result = Result()
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    pid = proc.pid
    try:
        deadline = time.time() + first_timeout
        while counter.poll() == 0:
            if proc.poll() is not None:
                result.note = f"exited with {proc.returncode}: " + _tail(stderr_path)
                return result
            if time.time() > deadline:
                result.note = f"did not finish a tick in {first_timeout:.0f} s"
                result.hwm_mib = _hwm_kib(pid) / 1024
                return result
            time.sleep(0.001)
        first_seen = time.time()
        try:
            exec_time = float(stamp.read_text())
            result.first_tick_s = first_seen - exec_time - (INTERVAL if subtract_interval else 0)
        except (OSError, ValueError):
            pass
        # Warm up, then sample at a tick boundary.
        while counter.poll() < warmup:
            if proc.poll() is not None:
                result.note = "exited during warm-up"
                return result
            time.sleep(0.002)
        stop_observing = threading.Event()
        if observe_port is not None:
            threading.Thread(
                target=_observe,
                args=(work / "run" / "oomd-status.socket", observe_port, stop_observing),
                daemon=True,
            ).start()
        start_count = counter.count
        cpu0, sched0, t0 = _cpu_ticks(pid), _sched_ns(pid), time.time()
        oncpu0 = oncpu1 = _oncpu_ns(pid)
        end = t0 + budget
        cpu1, sched1, t1, count = cpu0, sched0, t0, start_count
        while True:
            n = counter.poll()
            if n != count:
                count = n
                cpu1, sched1, t1 = _cpu_ticks(pid), _sched_ns(pid), time.time()
                oncpu1 = _oncpu_ns(pid)
                if n - start_count >= ticks:
                    break
            if proc.poll() is not None:
                result.note = "exited while measuring"
                break
            if time.time() > end and count - start_count >= 3:
                break
            if time.time() > end + 10 * budget:
                result.note = "too slow to measure"
                break
            time.sleep(0.002)
        measured = count - start_count
        result.ticks = measured
        if measured > 0:
            result.cpu_s = (cpu1 - cpu0) / CLK_TCK / measured
            result.wall_s = (sched1 - sched0) / 1e9 / measured
            result.thread_cpu_s = (oncpu1 - oncpu0) / 1e9 / measured
            result.period_wall_s = (t1 - t0) / measured - INTERVAL
        result.hwm_mib = _hwm_kib(pid) / 1024
        stop_observing.set()
        return result
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _observe(status_socket: Path, port: int, stop: threading.Event) -> None:
    """``oomd status`` and a Prometheus scrape, once a second, until ``stop``."""
    import socket
    import urllib.request

    while not stop.wait(1.0):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(str(status_socket))
                sock.sendall(b"status 3\n")
                while sock.recv(65536):
                    pass
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                r.read()
        except OSError as e:
            print(f"observe: {e}", file=sys.stderr)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-300:].replace("\n", " | ")
    except OSError:
        return ""


# --- the table -----------------------------------------------------------------------


def _fmt_s(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms"


def _fmt_ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs <= 0:
        return "-"
    return f"{ours / theirs:.2f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--depths", default="1,2")
    parser.add_argument("--configs", default="read,rank")
    parser.add_argument("--ticks", type=int, default=20, help="ticks measured per run")
    parser.add_argument("--warmup", type=int, default=2, help="ticks before measuring")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds of measurement after which a run stops once it has 3 ticks",
    )
    parser.add_argument(
        "--first-tick-timeout",
        type=float,
        default=150.0,
        help="give up on a daemon that has not finished a tick after this long",
    )
    parser.add_argument(
        "--observe",
        action="store_true",
        help="also run ours with --metrics-address, asked for status and scraped every "
        "second ('observed'), right after the plain run on the same tree",
    )
    parser.add_argument(
        "--observe-src",
        default=None,
        help="with --observe: also run an observed daemon from this source dir "
        "('observed-old', e.g. the previous version unpacked with git archive)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each daemon this many times per tree, alternating their order",
    )
    parser.add_argument("--no-upstream", action="store_true")
    parser.add_argument("--only-upstream", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--dir", default="/dev/shm", help="where the trees go (tmpfs)")
    parser.add_argument(
        "--src",
        default=str(REPO / "src"),
        help="the oomd package's source dir for ours (e.g. an older version unpacked with "
        "git archive, to measure before/after)",
    )
    parser.add_argument(
        "--python",
        default=None,
        help="interpreter for ours (default: /usr/bin/python3 if >= 3.11, else 'venv': "
        "the checkout's .venv console script)",
    )
    args = parser.parse_args()

    mount_point = cgroup2_mount()
    if os.geteuid() != 0 or shutil.which("unshare") is None or mount_point is None:
        print("needs root, unshare(1) and a cgroup2 mount", file=sys.stderr)
        return 2
    python = args.python or default_python()
    daemons: dict[str, list[str]] = {"ours": our_binary(python)}
    upstream = None if args.no_upstream else upstream_binary()
    if upstream is not None:
        daemons["upstream"] = [upstream]
        if args.only_upstream:
            del daemons["ours"]
    elif not args.no_upstream:
        print("upstream oomd not installed (apt-get install oomd): ours only\n")

    sizes = [int(s) for s in args.sizes.split(",")]
    depths = [int(d) for d in args.depths.split(",")]
    kinds = args.configs.split(",")
    print(
        f"host: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs "
        f"({_cpu_model()}), kernel {platform.release()}"
    )
    ours = daemons.get("ours")
    print(
        f"ours: {' '.join(ours) if ours else 'not run'}"
        + (f" ({_python_version(ours[0])}, {args.src})" if ours else "")
        + f"; upstream: {upstream or 'not run'}"
    )
    print(f"cgroup2 mount: {mount_point}; trees under {args.dir}; -i {INTERVAL}\n")

    results: list[dict[str, object]] = []
    base = Path(tempfile.mkdtemp(prefix="oomd-bench-", dir=args.dir))
    srcs = {name: args.src for name in daemons}
    if args.observe and "ours" in daemons:
        daemons["observed"] = daemons["ours"]
        srcs["observed"] = args.src
        if args.observe_src:
            daemons["observed-old"] = daemons["ours"]
            srcs["observed-old"] = args.observe_src
    envs = {name: _env(name, base, srcs[name]) for name in daemons}
    try:
        if "ours" in daemons:
            _warm_up(daemons["ours"], kinds, base, mount_point, envs["ours"])
        for depth in depths:
            for size in sizes:
                tree = str(base / f"tree-{size}-{depth}")
                paths = build_tree(tree, size, depth)
                last = paths[-1]
                for kind in kinds:
                    conf = base / f"{kind}-{depth}.json"
                    conf.write_text(json.dumps(config(kind, depth), indent=1))
                    if kind == "read":
                        marker, where = f"cgroup={last} ".encode(), "stderr"
                    else:
                        marker, where = b"oomd kill: ", "kmsg"
                    row: dict[str, object] = {"config": kind, "leaves": size, "depth": depth}
                    order = list(daemons.items())
                    for attempt in range(args.repeat):
                        for name, binary in order if attempt % 2 == 0 else order[::-1]:
                            work = base / f"{name}-{kind}-{size}-{depth}"
                            observe = name.startswith("observed")
                            port = 19101 if observe else None
                            metrics = ["--metrics-address", f"127.0.0.1:{port}"] if observe else []
                            res = run_daemon(
                                [*binary, "-C", str(conf), *metrics],
                                tree,
                                mount_point,
                                work,
                                marker,
                                where,
                                args.ticks,
                                args.warmup,
                                args.first_tick_timeout,
                                args.budget,
                                subtract_interval=name == "upstream",
                                env=envs[name],
                                observe_port=port,
                            )
                            row[name if attempt == 0 else f"{name}#{attempt}"] = res.__dict__
                            shutil.rmtree(work, ignore_errors=True)
                            _print_run(kind, size, depth, name, res)
                    results.append(row)
                shutil.rmtree(tree, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print()
    _print_table(results, "upstream" in daemons)
    if args.observe:
        _print_observe(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _python_version(executable: str) -> str:
    if not executable.endswith(("python", "python3")) and "python3." not in executable:
        executable = sys.executable
    out = _python_says(executable, "platform.python_version()")
    return f"Python {out}" if out else "Python ?"


def _env(name: str, base: Path, src: str) -> dict[str, str]:
    """An installed daemon's environment: Python reads compiled bytecode instead of
    compiling every module at start (pip compiles at install; this checkout may run
    with PYTHONDONTWRITEBYTECODE), kept in the bench's own directory."""
    env = dict(os.environ)
    if name == "ours" or name.startswith("observed"):
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        env["PYTHONPATH"] = src
    return env


def _warm_up(
    binary: list[str], kinds: list[str], base: Path, mount_point: str, env: dict[str, str]
) -> None:
    """Run ours once per config on a small tree so that every module it imports is
    compiled (not measured)."""
    tree = str(base / "warm-up-tree")
    build_tree(tree, 10, 1)
    for kind in kinds:
        conf = base / f"warm-up-{kind}.json"
        conf.write_text(json.dumps(config(kind, 1)))
        marker = b"cgroup=workload.slice/cg9 " if kind == "read" else b"oomd kill: "
        run_daemon(
            [*binary, "-C", str(conf)],
            tree,
            mount_point,
            base / f"warm-up-{kind}",
            marker,
            "stderr" if kind == "read" else "kmsg",
            1,
            1,
            60,
            5,
            subtract_interval=False,
            env=env,
        )
    shutil.rmtree(tree, ignore_errors=True)


def _print_run(kind: str, size: int, depth: int, name: str, res: Result) -> None:
    print(
        f"  {kind:4} {size:>6} leaves depth {depth} {name:8}: "
        f"cpu {_fmt_s(res.cpu_s)}/tick, wall {_fmt_s(res.wall_s)}/tick "
        f"(period-interval {_fmt_s(res.period_wall_s)}), "
        f"VmHWM {res.hwm_mib or 0:.1f} MiB, first tick {_fmt_s(res.first_tick_s)}, "
        f"{res.ticks} ticks {res.note}",
        flush=True,
    )


def _print_table(results: list[dict[str, object]], with_upstream: bool) -> None:
    head = (
        "| config | leaves | depth | CPU/tick ours | upstream | ratio "
        "| wall/tick ours | upstream | ratio | VmHWM ours | upstream "
        "| first tick ours | upstream* | ticks |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in results:
        ours = Result(**row["ours"]) if "ours" in row else Result()  # type: ignore[arg-type]
        up = Result(**row["upstream"]) if with_upstream else Result()  # type: ignore[arg-type]
        up_cpu = _fmt_s(up.cpu_s) if up.note == "" or up.cpu_s is not None else up.note
        print(
            f"| {row['config']} | {row['leaves']:,} | {row['depth']} "
            f"| {_fmt_s(ours.cpu_s)} | {up_cpu} | {_fmt_ratio(ours.cpu_s, up.cpu_s)} "
            f"| {_fmt_s(ours.wall_s)} | {_fmt_s(up.wall_s)} | {_fmt_ratio(ours.wall_s, up.wall_s)} "
            f"| {ours.hwm_mib or 0:.1f} MiB | {up.hwm_mib or 0:.1f} MiB "
            f"| {_fmt_s(ours.first_tick_s)} | {_fmt_s(up.first_tick_s)} "
            f"| {ours.ticks}/{up.ticks} |"
        )
    print(
        "\n* upstream sleeps one interval before its first tick; shown without it. "
        "Ratios are ours/upstream (lower is better for us)."
    )


def _print_observe(results: list[dict[str, object]]) -> None:
    """Per daemon (plain, observed, observed-old): every run's CPU and wall per tick,
    their mean, and the mean's change against the plain runs."""
    print(
        "\n| config | leaves | daemon | tick-thread CPU/tick, each run | mean | vs plain | process CPU/tick mean | vs plain |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in results:
        runs: dict[str, list[Result]] = {}
        for key, value in row.items():
            if isinstance(value, dict):
                runs.setdefault(key.split("#")[0], []).append(Result(**value))
        means = {
            name: (
                _mean([r.thread_cpu_s for r in rs]),
                _mean([r.cpu_s for r in rs]),
            )
            for name, rs in runs.items()
        }
        plain = means.get("ours", (None, None))
        for name, rs in runs.items():
            wall, cpu = means[name]
            print(
                f"| {row['config']} | {row['leaves']:,} | {name} "
                f"| {' '.join(_fmt_s(r.thread_cpu_s) for r in rs)} | {_fmt_s(wall)} "
                f"| {_pct(wall, plain[0])} | {_fmt_s(cpu)} | {_pct(cpu, plain[1])} |"
            )


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _pct(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{(value / base - 1) * 100:+.1f} %"


if __name__ == "__main__":
    sys.exit(main())
