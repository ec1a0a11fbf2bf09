"""Stand-ins for a D-Bus system bus with systemd on it, so no test reaches the host's.

:class:`FakeBus` listens on a unix socket in a test's tmp dir and plays both the bus
(``AUTH``, ``Hello``) and systemd's manager (``RestartUnit``), recording what it was
sent. :class:`PrivateDbusDaemon` runs a real ``dbus-daemon`` on a private socket (for
the tests that check interoperability, skipped where none is installed) and
:func:`serve_fake_systemd` puts a fake ``org.freedesktop.systemd1`` on it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from oomd import dbus
from oomd.dbus import ERROR, METHOD_CALL, METHOD_RETURN, SIGNAL, Message

JOB = "/org/freedesktop/systemd1/job/1234"


class FakeBus:
    """A message bus on ``path`` whose systemd answers RestartUnit with ``job``, or
    with ``error`` (name, message), or with a body of ``reply_signature``; with
    ``silent`` it never answers; with ``reject_auth`` it refuses every client."""

    def __init__(self, path: Path, endian: str = "l") -> None:
        self.path = path
        self.endian = endian
        self.job = JOB
        self.error: tuple[str, str] | None = None
        self.reply_signature = "o"
        self.silent = False
        self.reject_auth = False
        self.auth_lines: list[bytes] = []
        self.messages: list[Message] = []
        self.connections = 0
        self._serial = 1000
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(8)
        self._server.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"unix:path={self.path}"

    @property
    def calls(self) -> list[Message]:
        """The method calls made to systemd (Hello excluded)."""
        return [m for m in self.messages if m.type == METHOD_CALL and m.member != "Hello"]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()

    def __enter__(self) -> FakeBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving --------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(0.05)
                with contextlib.suppress(OSError, ConnectionError, dbus.ProtocolError):
                    self._handle(conn)

    def _recv(self, conn: socket.socket, buf: bytearray) -> bool:
        while not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return False
            buf.extend(chunk)
            return True
        return False

    def _line(self, conn: socket.socket, buf: bytearray) -> bytes | None:
        while b"\r\n" not in buf:
            if not self._recv(conn, buf):
                return None
        end = buf.index(b"\r\n")
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line

    def _send(self, conn: socket.socket, msg: Message) -> None:
        self._serial += 1
        msg.serial = self._serial
        conn.sendall(dbus.encode_message(msg, self.endian))

    def _handle(self, conn: socket.socket) -> None:
        buf = bytearray()
        line = self._line(conn, buf)
        if line is None:
            return
        self.auth_lines.append(line)
        if self.reject_auth or not line.startswith(b"\0AUTH EXTERNAL "):
            conn.sendall(b"REJECTED EXTERNAL\r\n")
            return
        conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
        if self._line(conn, buf) != b"BEGIN":
            return
        while True:
            while len(buf) < 16:
                if not self._recv(conn, buf):
                    return
            size = dbus.message_size(bytes(buf[:16]))
            while len(buf) < size:
                if not self._recv(conn, buf):
                    return
            msg = dbus.decode_message(bytes(buf[:size]))
            del buf[:size]
            self.messages.append(msg)
            self._answer(conn, msg)

    def _answer(self, conn: socket.socket, msg: Message) -> None:
        if msg.member == "Hello":
            # Traffic the client must skip: a signal and a reply to another serial.
            self._send(
                conn,
                Message(
                    SIGNAL,
                    0,
                    path="/org/freedesktop/DBus",
                    interface="org.freedesktop.DBus",
                    member="NameAcquired",
                    signature="s",
                    body=(":1.42",),
                ),
            )
            self._send(conn, Message(METHOD_RETURN, 0, reply_serial=msg.serial + 100))
            self._send(
                conn,
                Message(METHOD_RETURN, 0, reply_serial=msg.serial, signature="s", body=(":1.42",)),
            )
            return
        if self.silent:
            return
        if self.error is not None:
            name, text = self.error
            self._send(
                conn,
                Message(
                    ERROR, 0, error_name=name, reply_serial=msg.serial, signature="s", body=(text,)
                ),
            )
            return
        body: tuple[object, ...] = (self.job,) if self.reply_signature == "o" else (7,)
        self._send(
            conn,
            Message(
                METHOD_RETURN, 0, reply_serial=msg.serial, signature=self.reply_signature, body=body
            ),
        )


# --- a real dbus-daemon --------------------------------------------------------------------

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
"""

DBUS_DAEMON = shutil.which("dbus-daemon")


class PrivateDbusDaemon:
    """A real dbus-daemon listening on ``<dir>/bus`` only, stopped on exit."""

    def __init__(self, directory: Path) -> None:
        assert DBUS_DAEMON is not None
        self.socket = directory / "bus"
        config = directory / "bus.conf"
        config.write_text(_CONFIG.format(socket=self.socket))
        self.proc = subprocess.Popen(
            [DBUS_DAEMON, "--nofork", "--nopidfile", f"--config-file={config}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
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
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@contextlib.contextmanager
def serve_fake_systemd(address: str, job: str) -> Iterator[list[Message]]:
    """Own ``org.freedesktop.systemd1`` on a real bus and answer every RestartUnit with
    ``job``; yields the calls received."""
    conn = dbus.Connection.open(address, 5.0)
    reply = conn.call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "RequestName",
        "su",
        ("org.freedesktop.systemd1", 4),
    )
    assert reply.body == (1,), "could not become the primary owner"
    calls: list[Message] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                msg = conn.receive(time.monotonic() + 0.05)
            except TimeoutError:
                continue
            except (OSError, dbus.ProtocolError):
                return
            if msg.type != METHOD_CALL or msg.member != "RestartUnit":
                continue
            calls.append(msg)
            conn.send(
                Message(
                    METHOD_RETURN,
                    0,
                    reply_serial=msg.serial,
                    destination=msg.sender,
                    signature="o",
                    body=(job,),
                )
            )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield calls
    finally:
        stop.set()
        thread.join(5)
        conn.close()
