"""Processes a test spawns (and only those) to be listed in fake cgroup.procs files."""

from __future__ import annotations

import subprocess
import sys


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
