"""Runs inside the oomdvm guest (``oomdvm.py selftest``): proves the guest gives real
memory pressure (PSI rises, swap fills, no kernel OOM kill under memory.high/max with
swap), that ``cgroup.kill`` kills a whole cgroup at once, and that the kernel OOM killer
still works where there is no swap. Exit status 0 = pass. Stdlib only."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CG = "/sys/fs/cgroup"

HOG = r"""
import os, sys, time
size = int(sys.argv[1])
block = os.urandom(1 << 20)  # incompressible, so zram cannot store it for free
blocks = []
while len(blocks) << 20 < size:
    blocks.append(bytearray(block))
print("allocated", flush=True)
touch = bytes(256)
while True:
    for b in blocks:
        b[::4096] = touch
"""


def size(text: str) -> int:
    units = {"K": 10, "M": 20, "G": 30}
    return int(text[:-1]) << units[text[-1].upper()] if text[-1].isalpha() else int(text)


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def kv(path: str) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in read(path).splitlines())}


def pressure(path: str) -> dict[str, dict[str, float]]:
    out = {}
    for line in read(path).splitlines():
        kind, *fields = line.split()
        out[kind] = {k: float(v) for k, v in (f.split("=") for f in fields)}
    return out


def make(name: str, files: dict[str, str]) -> str:
    path = f"{CG}/{name}"
    os.makedirs(path, exist_ok=True)
    for key, value in files.items():
        write(f"{path}/{key}", value)
    return path


def spawn(cgroup: str, size_bytes: int) -> subprocess.Popen[bytes]:
    def enter() -> None:
        write(f"{cgroup}/cgroup.procs", "0")

    return subprocess.Popen(
        [sys.executable, "-c", HOG, str(size_bytes)], preexec_fn=enter, stdout=subprocess.PIPE
    )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--hog", default="600M")
    p.add_argument("--high", default="200M")
    p.add_argument("--max", default="300M")
    p.add_argument("--seconds", type=float, default=10)
    a = p.parse_args()
    failures = []
    print(f"== {CG}/cgroup.controllers: {read(CG + '/cgroup.controllers')}")
    print(f"== cgroup.subtree_control: {read(CG + '/cgroup.subtree_control')}")
    print("== swaps:", " | ".join(read("/proc/swaps").splitlines()[1:]) or "none")
    if "memory" not in read(CG + "/cgroup.controllers"):
        print("FAIL: no memory controller")
        return 1

    wl = make("workload", {"memory.high": str(size(a.high)), "memory.max": str(size(a.max))})
    hog = spawn(wl, size(a.hog))
    print("   t   cur_MiB  swap_MiB  some10  full10  some_total_us  high  max oom_kill")
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.seconds:
        time.sleep(1)
        ev = kv(f"{wl}/memory.events")
        pr = pressure(f"{wl}/memory.pressure")
        print(
            f"{time.monotonic() - t0:5.1f} {int(read(wl + '/memory.current')) / 2**20:8.1f}"
            f" {int(read(wl + '/memory.swap.current')) / 2**20:8.1f}"
            f" {pr['some']['avg10']:7.2f} {pr['full']['avg10']:7.2f}"
            f" {int(pr['some']['total']):14d} {ev['high']:5d} {ev['max']:4d} {ev['oom_kill']:4d}",
            flush=True,
        )
    if pressure(f"{wl}/memory.pressure")["some"]["total"] <= 0:
        failures.append("no memory pressure in the workload cgroup")
    if kv(f"{wl}/memory.events")["oom_kill"]:
        failures.append("the kernel OOM-killed the hog although swap was on")

    t = time.monotonic()
    write(f"{wl}/cgroup.kill", "1")
    rc = hog.wait(30)
    died = time.monotonic() - t
    populated = kv(f"{wl}/cgroup.events")["populated"]
    print(f"== cgroup.kill: hog returncode={rc} after {died:.3f}s, populated={populated}")
    if rc != -9 or populated:
        failures.append("cgroup.kill did not kill the hog")

    oom = make("oomkill", {"memory.max": str(100 << 20), "memory.swap.max": "0"})
    victim = spawn(oom, 300 << 20)
    rc = victim.wait(60)
    events = kv(f"{oom}/memory.events")
    print(f"== kernel OOM (memory.max=100M, swap.max=0, 300M hog): rc={rc}, events={events}")
    if rc != -9 or events["oom_kill"] < 1:
        failures.append("the kernel OOM killer did not kill the 300M hog in a 100M cgroup")
    print("== /proc/pressure/memory:", " | ".join(read("/proc/pressure/memory").splitlines()))
    for f in failures:
        print("FAIL:", f)
    print("== SELFTEST", "FAILED" if failures else "PASSED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
