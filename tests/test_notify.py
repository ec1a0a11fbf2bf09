"""systemd's notify protocol (oomd.notify): the address forms, the environment, and the
real daemon on a fake tree talking to a real unix datagram socket: READY after the first
tick, WATCHDOG and STATUS every tick, STOPPING on exit."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oomd.notify import Notifier, socket_address
from tests.support.daemon import Daemons
from tests.support.procs import Spawner
from tests.support.tree import FakeTree
from tests.test_daemon import CONFIG


def test_socket_address_forms() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@oomd-test") == "\0oomd-test"
    assert socket_address("@") is None
    assert socket_address("vsock:2:1234") is None
    assert socket_address("relative/path") is None


def test_from_env_takes_the_variables_out_of_the_environment() -> None:
    env = {
        "NOTIFY_SOCKET": "@x",
        "WATCHDOG_USEC": "30000000",
        "WATCHDOG_PID": str(os.getpid()),
        "PATH": "/bin",
    }
    n = Notifier.from_env(env)
    assert (n.address, n.watchdog_usec) == ("\0x", 30_000_000)
    assert env == {"PATH": "/bin"}  # the prekill hooks we run must not inherit them


def test_watchdog_meant_for_another_pid_or_malformed_is_ignored() -> None:
    other = Notifier.from_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "5", "WATCHDOG_PID": "1"})
    assert other.watchdog_usec is None
    assert Notifier.from_env({"WATCHDOG_USEC": "soon"}).watchdog_usec is None
    assert Notifier.from_env({"WATCHDOG_USEC": "0"}).watchdog_usec is None


def test_without_a_socket_or_with_a_dead_one_sending_is_harmless(tmp_path: Path) -> None:
    assert not Notifier.from_env({}).send(ready="1")
    gone = Notifier(str(tmp_path / "nobody-listens"))
    assert not gone.send(ready="1")
    assert not gone.send(watchdog="1")  # logged once, never raised


@pytest.fixture(params=["path", "abstract"])
def notify_socket(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify")
        sock.bind(address)
        env_value = address
    else:
        name = f"oomd-test-notify-{os.getpid()}-{time.monotonic_ns()}"
        sock.bind("\0" + name)
        env_value = "@" + name
    sock.settimeout(20)
    yield sock, env_value
    sock.close()


def _messages(sock: socket.socket, until: str) -> list[dict[str, str]]:
    """Datagrams (as dicts) up to and including the first that has ``until``."""
    got = []
    while True:
        data = sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in data.splitlines() if line)
        got.append(fields)
        if until in fields:
            return got


def test_daemon_notifies_ready_watchdog_status_and_stopping(
    tree: FakeTree,
    tmp_path: Path,
    spawner: Spawner,
    daemons: Daemons,
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, env_value = notify_socket
    victim = spawner.sleeper()
    tree.cgroup("workload.slice", pressure=(60, 50, 40))
    tree.cgroup(
        "workload.slice/big.service", current=400 << 20, procs=[victim.pid], stat={"anon": 1}
    )
    cfg = tmp_path / "oomd.json"
    cfg.write_text(json.dumps(CONFIG))
    # The daemon's environment is the test's plus $NOTIFY_SOCKET.
    d = daemons.start(
        tree.root,
        tmp_path,
        *("-i", "1", "-D", str(tmp_path / "run"), "-C", str(cfg)),
        env={"NOTIFY_SOCKET": env_value},
    )
    first = sock.recv(4096).decode()
    assert first.splitlines()[0] == "READY=1", (first, d.stderr())
    fields = dict(line.split("=", 1) for line in first.splitlines())
    assert fields["WATCHDOG"] == "1"
    assert fields["STATUS"].startswith("1 ruleset armed, ")
    # The first tick killed (pressure 60 > 40): the status says so from then on.
    assert d.wait_for(lambda: any(line.startswith("oomd kill:") for line in d.kmsg()))
    pings = _messages(sock, "WATCHDOG")
    pings += _messages(sock, "WATCHDOG")
    assert all("READY" not in p for p in pings)
    assert pings[-1]["STATUS"].startswith("1 ruleset armed, 1 kill, last at ")
    d.proc.send_signal(signal.SIGTERM)
    last = _messages(sock, "STOPPING")[-1]
    assert last["STOPPING"] == "1" and last["STATUS"] == "Received signal 15. Exiting!"
    assert d.stop() in (-signal.SIGTERM, 128 + signal.SIGTERM)
