"""A real, private dbus-daemon for the tests, and a stand-in systemd on it written
with jeepney (no hand-written wire protocol): it owns ``org.freedesktop.systemd1`` and
records every ``RestartUnit`` call."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

DBUS_DAEMON = shutil.which("dbus-daemon")
JOB = "/org/freedesktop/systemd1/job/77"

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>{auth}</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
"""


class PrivateDbusDaemon:
    """A real dbus-daemon listening on ``socket`` only (its config beside it), stopped
    by :meth:`stop`; ``auth`` is the one mechanism it accepts."""

    def __init__(self, socket: Path, auth: str = "EXTERNAL") -> None:
        assert DBUS_DAEMON is not None
        self.socket = socket
        socket.parent.mkdir(parents=True, exist_ok=True)
        config = socket.parent / (socket.name + ".conf")
        config.write_text(_CONFIG.format(socket=socket, auth=auth))
        self.proc = subprocess.Popen(
            [DBUS_DAEMON, "--nofork", "--nopidfile", f"--config-file={config}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dbus-daemon did not start")
            time.sleep(0.01)

    @property
    def address(self) -> str:
        return f"unix:path={self.socket}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class FakeSystemd:
    """Owns ``org.freedesktop.systemd1`` on ``address`` and answers RestartUnit on
    ``/org/freedesktop/systemd1`` with ``job`` (or ``error``, a reply of another
    ``reply_signature``, or nothing when ``silent``). ``calls``: the (signature, body)
    of every RestartUnit received. A context manager; serves from a thread."""

    def __init__(self, address: str, job: str = JOB) -> None:
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        self.job = job
        self.error: tuple[str, str] | None = None
        self.reply_signature = "o"
        self.silent = False
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.conn = open_dbus_connection(bus=address)
        reply = self.conn.send_and_get_reply(
            message_bus.RequestName("org.freedesktop.systemd1"), timeout=5
        )
        assert reply.body == (1,), reply.body  # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        from jeepney import MessageType, new_error, new_method_return
        from jeepney.low_level import HeaderFields

        while not self._stop.is_set():
            try:
                msg = self.conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = msg.header.fields
            if msg.header.message_type != MessageType.method_call:
                continue
            if fields.get(HeaderFields.member) != "RestartUnit":
                continue
            assert fields.get(HeaderFields.path) == "/org/freedesktop/systemd1"
            assert fields.get(HeaderFields.interface) == "org.freedesktop.systemd1.Manager"
            self.calls.append((str(fields.get(HeaderFields.signature, "")), tuple(msg.body)))
            if self.silent:
                continue
            if self.error is not None:
                self.conn.send(new_error(msg, self.error[0], "s", (self.error[1],)))
            elif self.reply_signature == "o":
                self.conn.send(new_method_return(msg, "o", (self.job,)))
            else:
                self.conn.send(new_method_return(msg, self.reply_signature, (7,)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.close()

    def __enter__(self) -> FakeSystemd:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
