"""Processes a test spawns (and only those) to be listed in fake cgroup.procs files."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading

from tests.support.tree import FakeTree


class Spawner:
    """Starts idle child processes and makes sure every one is gone at teardown."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def sleeper(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [sys.executable, "-c", "import time\nwhile True: time.sleep(60)"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.children.append(child)
        return child

    @staticmethod
    def is_dead(child: subprocess.Popen[bytes], timeout: float = 5.0) -> bool:
        """True once the child has exited (reaping it), False if still alive after
        ``timeout`` seconds."""
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def cleanup(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()
            child.wait()


class LiveProcs:
    """Keeps a fake tree's ``cgroup.procs`` honest while daemons run, as the kernel
    would: a listed process that dies is removed from its file. It is not reaped here:
    a zombie's pid cannot be recycled, so a daemon that read the file just before
    (upstream's included, which signals by plain pid) can never signal another process.
    Stop every daemon before the spawner's cleanup reaps them."""

    def __init__(self, tree: FakeTree) -> None:
        self.tree = tree
        #: What each cgroup.procs lists now (live processes only).
        self.listed: dict[str, list[subprocess.Popen[bytes]]] = {}
        #: Every process ever added, by cgroup.
        self.members: dict[str, list[subprocess.Popen[bytes]]] = {}
        #: Pids seen to die, in the order they died.
        self.died: list[int] = []
        self._watched: dict[int, tuple[subprocess.Popen[bytes], str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, rel: str, child: subprocess.Popen[bytes]) -> None:
        """List ``child`` (a process the test spawned) in ``rel``'s cgroup.procs."""
        with self._lock:
            self._watched[os.pidfd_open(child.pid)] = (child, rel)
            self.listed.setdefault(rel, []).append(child)
            self.members.setdefault(rel, []).append(child)
            self._write(rel)

    def _write(self, rel: str) -> None:
        pids = "".join(f"{c.pid}\n" for c in self.listed.get(rel, []))
        self.tree.write_atomic(rel, "cgroup.procs", pids)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="live-procs", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                fds = list(self._watched)
            if not fds:
                self._stop.wait(0.05)
                continue
            poller = select.poll()
            for fd in fds:
                poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll(50):
                with self._lock:
                    child, rel = self._watched.pop(fd)
                    self.listed[rel].remove(child)
                    self._write(rel)
                    self.died.append(child.pid)
                os.close(fd)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for fd in self._watched:
                os.close(fd)
            self._watched.clear()
