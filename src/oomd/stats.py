"""Daemon counters (``oomd.kills`` and friends) and the unix socket that exposes them.

The store is upstream's string -> int map (upstream's ints are 32-bit; ours are not).
The socket speaks upstream's protocol byte for byte, so ``oomd -d``/``-r`` of either
implementation talk to either daemon.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
from collections.abc import Mapping

from oomd import log

KILLS = "oomd.kills"
DROPIN_ADDED = "oomd.dropin.added"
DROPIN_FIRED = "oomd.dropin.fired"
CORE_KEYS = (KILLS, DROPIN_ADDED, DROPIN_FIRED)


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}

    def set(self, key: str, value: int) -> None:
        with self._lock:
            self._values[key] = value

    def increment(self, key: str, delta: int = 1) -> None:
        with self._lock:
            self._values[key] = self._values.get(key, 0) + delta

    def get(self, key: str) -> int | None:
        with self._lock:
            return self._values.get(key)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def reset(self) -> None:
        """Zero every value but keep the keys, as upstream's ``r`` request does."""
        with self._lock:
            for key in self._values:
                self._values[key] = 0


# --- the stats socket ----------------------------------------------------------------

SOCKET_NAME = "oomd-stats.socket"
_REQUEST_MAX = 32
_IO_TIMEOUT = 2.0


def styled_json(value: Mapping[str, object], indent: str = "") -> str:
    """jsoncpp's styled output for an object of ints/objects/ints: sorted keys, tab
    indentation, ``"key" : value`` and a nested object on its own line, so ``-d``
    prints byte for byte what upstream prints."""
    if not value:
        return "{}"
    import json  # on a stats request only: the daemon does not load json otherwise

    inner = indent + "\t"
    parts = []
    for key in sorted(value):
        item = value[key]
        if isinstance(item, Mapping):
            rendered = styled_json(item, inner)
            text = (
                f'{inner}"{key}" : {rendered}'
                if not item
                else f'{inner}"{key}" : \n{inner}{rendered}'
            )
        else:
            text = f'{inner}"{key}" : {json.dumps(item)}'
        parts.append(text)
    return "{\n" + ",\n".join(parts) + f"\n{indent}}}"


class StatsServer:
    """Serves ``g`` (get all), ``r`` (reset) and ``0`` (no-op) requests on a unix socket
    with upstream's protocol, one thread per connection with 2 s I/O timeouts."""

    def __init__(self, stats: Stats, path: str) -> None:
        self.stats = stats
        self.path = path
        self._sock: socket.socket | None = None
        self._running = False

    def start(self) -> None:
        """Bind and listen (mode 0600: only root may read or reset the counters);
        raises OSError (with a ``strerror`` always)."""
        self._sock = listen_unix(self.path)
        self._running = True
        threading.Thread(target=self._serve, name="oomd-stats", daemon=True).start()

    def close(self) -> None:
        self._running = False
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _serve(self) -> None:
        while self._running and self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if not self._running:
                    return
                continue
            conn.settimeout(_IO_TIMEOUT)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            mode = "a"
            received = 0
            try:
                while received < _REQUEST_MAX:
                    byte = conn.recv(1)
                    if not byte or byte in (b"\n", b"\0"):
                        break
                    if received == 0:
                        mode = byte.decode("latin-1")
                    received += 1
            except OSError as e:
                log.always(f"Stats server error: reading from socket: {e.strerror}")
                return
            if received == 0:
                log.always("Stats server error: no msg received")
            error = 0
            body: dict[str, int] = {}
            if mode == "g":
                body = self.stats.snapshot()
            elif mode == "r":
                self.stats.reset()
            elif mode != "0":
                error = 1
                log.always(f"Stats server error: received unknown request: {mode}")
            reply = styled_json({"body": body, "error": error}) + "\n"
            try:
                conn.sendall(reply.encode())
            except OSError as e:
                log.always(f"Stats server error: writing to socket: {e.strerror}")


#: sizeof(sockaddr_un.sun_path) - 1 on Linux.
_MAX_SOCKET_PATH = 107


def listen_unix(path: str) -> socket.socket:
    """A listening unix stream socket at ``path`` (replacing a stale one), mode 0600
    from the start: only root may talk to the daemon. Raises OSError, always with a
    ``strerror``. Shared by the stats and the status sockets."""
    check_socket_path(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        old_umask = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        sock.listen(5)
    except OSError:
        sock.close()
        raise
    return sock


def check_socket_path(path: str) -> None:
    """Python's own error for a path too long for a unix socket has no ``strerror``."""
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        raise OSError(
            errno.ENAMETOOLONG,
            f"path longer than {_MAX_SOCKET_PATH} bytes, too long for a unix socket",
            path,
        )


class StatsClientError(Exception):
    pass


def request(path: str, command: str) -> dict[str, object]:
    """Send one request to a running daemon's stats socket and parse the reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_IO_TIMEOUT)
        try:
            check_socket_path(path)
            sock.connect(path)
        except OSError as e:
            raise StatsClientError(
                f"Error: connecting to stats socket: {e.strerror}\nSocket path: {path}"
            ) from None
        try:
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except OSError as e:
            raise StatsClientError(f"Error: talking to stats socket: {e.strerror}") from None
    import json

    try:
        reply = json.loads(b"".join(chunks))
    except ValueError as e:
        raise StatsClientError(f"Unable to parse JSON: {e}") from None
    if not isinstance(reply, dict):
        raise StatsClientError("Unable to parse JSON: not an object")
    return reply


def dump_stats(path: str) -> str:
    """``oomd -d``: the daemon's counters as upstream prints them."""
    reply = request(path, "g")
    error = reply.get("error")
    if error != 0:
        raise StatsClientError(f"StatsClient error: received error code={error}")
    body = reply.get("body")
    if not isinstance(body, dict):
        raise StatsClientError("StatsClient error: no body in reply")
    return styled_json(body) + "\n\n"


def reset_stats(path: str) -> int:
    """``oomd -r``: the error code of the reset request (1 if it could not be sent)."""
    try:
        error = request(path, "r").get("error")
    except StatsClientError as e:
        log.raw(str(e))
        return 1
    return error if isinstance(error, int) else 1
