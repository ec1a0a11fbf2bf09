"""A minimal D-Bus client (stdlib only): connect to a bus, authenticate, call one
method and read its reply.

Enough of the D-Bus specification for ``systemd_restart``: the ``unix:path=`` and
``unix:abstract=`` transports, ``AUTH EXTERNAL`` with the effective uid, the
``Hello`` call every message-bus client makes first, and the wire format of
method calls, returns, errors and signals (either byte order; unix fds are never
negotiated). Signals and other traffic that arrive before the reply are skipped.

The marshalling functions are plain functions of bytes and Python values so the test
suite can build a stand-in bus with them; messages built here are also checked
against a real ``dbus-daemon`` where one is installed.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: What sd-bus and libdbus use when ``DBUS_SYSTEM_BUS_ADDRESS`` is unset.
DEFAULT_SYSTEM_BUS_ADDRESS = "unix:path=/run/dbus/system_bus_socket"
#: sd-bus's default method call timeout.
DEFAULT_TIMEOUT = 25.0
#: The specification's largest message (128 MiB).
MAX_MESSAGE = 1 << 27

METHOD_CALL = 1
METHOD_RETURN = 2
ERROR = 3
SIGNAL = 4

NO_REPLY_EXPECTED = 0x1

# Header field codes.
_PATH, _INTERFACE, _MEMBER, _ERROR_NAME, _REPLY_SERIAL = 1, 2, 3, 4, 5
_DESTINATION, _SENDER, _SIGNATURE, _UNIX_FDS = 6, 7, 8, 9
_FIELD_TYPES = {
    _PATH: "o",
    _INTERFACE: "s",
    _MEMBER: "s",
    _ERROR_NAME: "s",
    _REPLY_SERIAL: "u",
    _DESTINATION: "s",
    _SENDER: "s",
    _SIGNATURE: "g",
    _UNIX_FDS: "u",
}


class DBusError(Exception):
    """The peer answered a call with an error message."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message


class ProtocolError(Exception):
    """The peer sent something this client cannot understand."""


# --- signatures -----------------------------------------------------------------------

_FIXED = {
    "y": ("B", 1),
    "b": ("I", 4),
    "n": ("h", 2),
    "q": ("H", 2),
    "i": ("i", 4),
    "u": ("I", 4),
    "x": ("q", 8),
    "t": ("Q", 8),
    "d": ("d", 8),
    "h": ("I", 4),
}
_ALIGN = {**{k: v[1] for k, v in _FIXED.items()}, "s": 4, "o": 4, "g": 1, "v": 1, "a": 4}


def _complete_type(sig: str, pos: int) -> int:
    """End index of the single complete type starting at ``sig[pos]``."""
    if pos >= len(sig):
        raise ProtocolError(f"truncated signature {sig!r}")
    c = sig[pos]
    if c in _FIXED or c in "sogv":
        return pos + 1
    if c == "a":
        return _complete_type(sig, pos + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        pos += 1
        while pos < len(sig) and sig[pos] != close:
            pos = _complete_type(sig, pos)
        if pos >= len(sig):
            raise ProtocolError(f"unterminated container in signature {sig!r}")
        return pos + 1
    raise ProtocolError(f"unknown type {c!r} in signature {sig!r}")


def split_signature(sig: str) -> list[str]:
    """The complete types of a signature: ``"sa{sv}o"`` -> ``["s", "a{sv}", "o"]``."""
    types = []
    pos = 0
    while pos < len(sig):
        end = _complete_type(sig, pos)
        types.append(sig[pos:end])
        pos = end
    return types


def _alignment(t: str) -> int:
    return 8 if t[0] in "({" else _ALIGN[t[0]]


# --- marshalling ----------------------------------------------------------------------


class _Writer:
    def __init__(self, endian: str) -> None:
        self.prefix = "<" if endian == "l" else ">"
        self.buf = bytearray()

    def pad(self, alignment: int) -> None:
        self.buf.extend(b"\0" * (-len(self.buf) % alignment))

    def put(self, t: str, value: Any) -> None:
        c = t[0]
        if c in _FIXED:
            fmt, size = _FIXED[c]
            self.pad(size)
            self.buf.extend(struct.pack(self.prefix + fmt, value))
        elif c in "so":
            data = str(value).encode()
            self.pad(4)
            self.buf.extend(struct.pack(self.prefix + "I", len(data)) + data + b"\0")
        elif c == "g":
            data = str(value).encode()
            self.buf.extend(bytes([len(data)]) + data + b"\0")
        elif c == "v":
            inner_sig, inner = value
            self.put("g", inner_sig)
            self.put(inner_sig, inner)
        elif c == "a":
            element = t[1:]
            self.pad(4)
            at = len(self.buf)
            self.buf.extend(b"\0\0\0\0")
            self.pad(_alignment(element))
            start = len(self.buf)
            items = value.items() if isinstance(value, dict) else value
            for item in items:
                self.put(element, item)
            struct.pack_into(self.prefix + "I", self.buf, at, len(self.buf) - start)
        elif c in "({":
            self.pad(8)
            for member, item in zip(split_signature(t[1:-1]), value, strict=True):
                self.put(member, item)
        else:  # pragma: no cover - split_signature rejects unknown types
            raise ProtocolError(f"cannot marshal type {t!r}")


class _Reader:
    def __init__(self, data: bytes, endian: str, pos: int = 0) -> None:
        self.data = data
        self.prefix = "<" if endian == "l" else ">"
        self.pos = pos

    def align(self, alignment: int) -> None:
        self.pos += -self.pos % alignment

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise ProtocolError("message truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def get(self, t: str) -> Any:
        c = t[0]
        if c in _FIXED:
            fmt, size = _FIXED[c]
            self.align(size)
            value = struct.unpack(self.prefix + fmt, self.take(size))[0]
            return bool(value) if c == "b" else value
        if c in "so":
            self.align(4)
            (length,) = struct.unpack(self.prefix + "I", self.take(4))
            text = self.take(length + 1)
            return text[:-1].decode(errors="replace")
        if c == "g":
            (length,) = self.take(1)
            return self.take(length + 1)[:-1].decode(errors="replace")
        if c == "v":
            inner_sig = self.get("g")
            types = split_signature(inner_sig)
            if len(types) != 1:
                raise ProtocolError(f"variant signature {inner_sig!r} is not one type")
            return (inner_sig, self.get(inner_sig))
        if c == "a":
            element = t[1:]
            self.align(4)
            (length,) = struct.unpack(self.prefix + "I", self.take(4))
            self.align(_alignment(element))
            end = self.pos + length
            if end > len(self.data):
                raise ProtocolError("array runs past the message")
            items = []
            while self.pos < end:
                items.append(self.get(element))
            if element[0] == "{":
                return dict(items)
            return items
        if c in "({":
            self.align(8)
            return tuple(self.get(member) for member in split_signature(t[1:-1]))
        raise ProtocolError(f"cannot unmarshal type {t!r}")


def marshal(signature: str, values: Sequence[Any], endian: str = "l") -> bytes:
    """Values marshalled in a body that starts at offset 0 (8-aligned, as bodies are)."""
    writer = _Writer(endian)
    for t, value in zip(split_signature(signature), values, strict=True):
        writer.put(t, value)
    return bytes(writer.buf)


def unmarshal(signature: str, data: bytes, endian: str = "l") -> tuple[Any, ...]:
    reader = _Reader(data, endian)
    return tuple(reader.get(t) for t in split_signature(signature))


@dataclass
class Message:
    type: int
    serial: int
    flags: int = 0
    path: str | None = None
    interface: str | None = None
    member: str | None = None
    error_name: str | None = None
    reply_serial: int | None = None
    destination: str | None = None
    sender: str | None = None
    signature: str = ""
    body: tuple[Any, ...] = ()


def encode_message(msg: Message, endian: str = "l") -> bytes:
    """The wire form of ``msg``."""
    body = marshal(msg.signature, msg.body, endian)
    fields: list[tuple[int, tuple[str, Any]]] = []
    for code, value in (
        (_PATH, msg.path),
        (_INTERFACE, msg.interface),
        (_MEMBER, msg.member),
        (_ERROR_NAME, msg.error_name),
        (_REPLY_SERIAL, msg.reply_serial),
        (_DESTINATION, msg.destination),
        (_SENDER, msg.sender),
        (_SIGNATURE, msg.signature or None),
    ):
        if value is not None:
            fields.append((code, (_FIELD_TYPES[code], value)))
    writer = _Writer(endian)
    writer.put("y", ord(endian))
    writer.put("y", msg.type)
    writer.put("y", msg.flags)
    writer.put("y", 1)
    writer.put("u", len(body))
    writer.put("u", msg.serial)
    writer.put("a(yv)", fields)
    writer.pad(8)
    return bytes(writer.buf) + body


def message_size(head: bytes) -> int:
    """The total size of a message from its first 16 bytes."""
    if len(head) < 16:
        raise ProtocolError("short message header")
    endian = chr(head[0])
    if endian not in "lB":
        raise ProtocolError(f"bad endianness byte {head[0]:#x}")
    if head[3] != 1:
        raise ProtocolError(f"unsupported protocol version {head[3]}")
    prefix = "<" if endian == "l" else ">"
    body_len, _serial, fields_len = struct.unpack(prefix + "III", head[4:16])
    header = 16 + int(fields_len)
    total: int = header + (-header % 8) + int(body_len)
    if total > MAX_MESSAGE:
        raise ProtocolError(f"message of {total} bytes exceeds the maximum")
    return total


def decode_message(data: bytes) -> Message:
    """Parse one complete message (as sized by :func:`message_size`)."""
    endian = chr(data[0])
    reader = _Reader(data, endian)
    reader.pos = 1
    msg_type = reader.get("y")
    flags = reader.get("y")
    reader.get("y")
    body_len = reader.get("u")
    serial = reader.get("u")
    fields = reader.get("a(yv)")
    reader.align(8)
    msg = Message(type=msg_type, serial=serial, flags=flags)
    for code, (sig, value) in fields:
        expected = _FIELD_TYPES.get(code)
        if expected is None:
            continue  # unknown fields must be ignored
        if sig != expected:
            raise ProtocolError(f"header field {code} has type {sig!r}")
        name = {
            _PATH: "path",
            _INTERFACE: "interface",
            _MEMBER: "member",
            _ERROR_NAME: "error_name",
            _REPLY_SERIAL: "reply_serial",
            _DESTINATION: "destination",
            _SENDER: "sender",
            _SIGNATURE: "signature",
            _UNIX_FDS: "",
        }[code]
        if name:
            setattr(msg, name, value)
    body = data[reader.pos : reader.pos + body_len]
    if len(body) != body_len:
        raise ProtocolError("message body truncated")
    msg.body = unmarshal(msg.signature, body, endian)
    return msg


# --- addresses and connections --------------------------------------------------------


def _unescape(value: str) -> str:
    out = bytearray()
    i = 0
    raw = value.encode()
    while i < len(raw):
        if raw[i] == ord("%") and i + 3 <= len(raw):
            try:
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode(errors="surrogateescape")


#: The bytes the D-Bus specification lets an address value carry unescaped.
_OPTIONALLY_ESCAPED = frozenset(
    b"-_/.*0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def escape(value: str) -> str:
    """A value for a D-Bus address (``%XX`` for bytes outside the safe set)."""
    return "".join(
        chr(b) if b in _OPTIONALLY_ESCAPED else f"%{b:02x}"
        for b in value.encode(errors="surrogateescape")
    )


def parse_address(address: str) -> list[str]:
    """Socket addresses (a path, or ``"\\0name"`` for an abstract socket) of the
    ``unix:`` entries of a D-Bus address list, in order; other transports skipped."""
    result = []
    for entry in address.split(";"):
        transport, sep, params = entry.partition(":")
        if not sep or transport != "unix":
            continue
        keys: dict[str, str] = {}
        for pair in params.split(","):
            key, eq, value = pair.partition("=")
            if eq:
                keys[key] = _unescape(value)
        if "path" in keys:
            result.append(keys["path"])
        elif "abstract" in keys:
            result.append("\0" + keys["abstract"])
    return result


def system_bus_address() -> str:
    """``DBUS_SYSTEM_BUS_ADDRESS`` if set, else the well-known socket (as sd-bus)."""
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or DEFAULT_SYSTEM_BUS_ADDRESS


class Connection:
    """One authenticated connection to a message bus."""

    def __init__(self, sock: socket.socket, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.sock = sock
        self.timeout = timeout
        self._buf = b""
        self._serial = 0
        self.unique_name: str | None = None

    @classmethod
    def open(cls, address: str, timeout: float = DEFAULT_TIMEOUT) -> Connection:
        """Connect to the first reachable socket of ``address`` and authenticate.
        Raises OSError (connection; ``ENOENT``/``ECONNREFUSED`` mean no bus is
        there), ProtocolError or DBusError (authentication, Hello)."""
        targets = parse_address(address)
        if not targets:
            raise OSError(errno.EINVAL, f"no unix transport in bus address {address!r}")
        error: OSError | None = None
        for target in targets:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            sock.settimeout(timeout)
            try:
                sock.connect(target)
            except OSError as e:
                sock.close()
                error = e
                continue
            conn = cls(sock, timeout)
            try:
                conn.authenticate()
                conn.hello()
            except BaseException:
                conn.close()
                raise
            return conn
        assert error is not None
        raise error

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport --------------------------------------------------------------

    def _recv_more(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT))
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT)) from None
        if not chunk:
            raise ProtocolError("connection closed by the bus")
        self._buf += chunk

    def _read_line(self, deadline: float) -> bytes:
        while b"\r\n" not in self._buf:
            if len(self._buf) > 16384:
                raise ProtocolError("authentication line too long")
            self._recv_more(deadline)
        line, _, self._buf = self._buf.partition(b"\r\n")
        return line

    def _send(self, data: bytes) -> None:
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def authenticate(self) -> None:
        """SASL ``EXTERNAL`` with the effective uid, then ``BEGIN``."""
        deadline = time.monotonic() + self.timeout
        uid = str(os.geteuid()).encode().hex().encode()
        self._send(b"\0AUTH EXTERNAL " + uid + b"\r\n")
        line = self._read_line(deadline)
        if not line.startswith(b"OK"):
            raise ProtocolError("authentication rejected: " + line.decode(errors="replace").strip())
        self._send(b"BEGIN\r\n")

    def send(self, msg: Message) -> int:
        """Send ``msg`` with the next serial; returns the serial."""
        self._serial += 1
        msg.serial = self._serial
        self._send(encode_message(msg))
        return msg.serial

    def receive(self, deadline: float) -> Message:
        while len(self._buf) < 16:
            self._recv_more(deadline)
        size = message_size(self._buf[:16])
        while len(self._buf) < size:
            self._recv_more(deadline)
        data, self._buf = self._buf[:size], self._buf[size:]
        return decode_message(data)

    def call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        args: Sequence[Any] = (),
    ) -> Message:
        """Call a method and wait for its reply (other traffic is skipped). Returns
        the METHOD_RETURN message; raises DBusError for an ERROR reply,
        TimeoutError, OSError, ProtocolError."""
        serial = self.send(
            Message(
                type=METHOD_CALL,
                serial=0,
                path=path,
                interface=interface,
                member=member,
                destination=destination,
                signature=signature,
                body=tuple(args),
            )
        )
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self.receive(deadline)
            if reply.reply_serial != serial or reply.type not in (METHOD_RETURN, ERROR):
                continue
            if reply.type == ERROR:
                text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
                raise DBusError(reply.error_name or "", text)
            return reply

    def hello(self) -> str:
        reply = self.call(
            "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello"
        )
        if reply.signature != "s":
            raise ProtocolError(f"Hello returned signature {reply.signature!r}")
        self.unique_name = str(reply.body[0])
        return self.unique_name
