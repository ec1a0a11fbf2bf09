"""The minimal D-Bus client (oomd/dbus.py) systemd_restart uses: wire format against
bytes assembled by hand from the D-Bus specification, addresses, and a real
dbus-daemon where one is installed."""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

import pytest

from oomd import dbus
from oomd.dbus import (
    ERROR,
    METHOD_CALL,
    METHOD_RETURN,
    Message,
    ProtocolError,
    decode_message,
    encode_message,
    marshal,
    message_size,
    parse_address,
    split_signature,
    unmarshal,
)
from tests.support.fake_dbus import DBUS_DAEMON, FakeBus, PrivateDbusDaemon


def _string(code: int, sig: bytes, value: str) -> bytes:
    """One header field struct (already 8-aligned) with a string-like value."""
    data = value.encode()
    return bytes([code, 1]) + sig + b"\0" + struct.pack("<I", len(data)) + data + b"\0"


def _pad8(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 8)


def test_restart_unit_call_bytes_match_the_specification() -> None:
    """RestartUnit("a.service", "replace"), serial 2, little endian, by hand."""
    fields = b""
    for code, sig, value in (
        (1, b"o", "/org/freedesktop/systemd1"),
        (2, b"s", "org.freedesktop.systemd1.Manager"),
        (3, b"s", "RestartUnit"),
        (6, b"s", "org.freedesktop.systemd1"),
    ):
        fields = _pad8(fields) + _string(code, sig, value)
    fields = _pad8(fields) + bytes([8, 1]) + b"g\0" + bytes([2]) + b"ss\0"
    body = struct.pack("<I", 9) + b"a.service\0" + b"\0\0" + struct.pack("<I", 7) + b"replace\0"
    expected = (
        b"l\x01\x00\x01" + struct.pack("<III", len(body), 2, len(fields)) + _pad8(fields) + body
    )
    msg = Message(
        METHOD_CALL,
        2,
        path="/org/freedesktop/systemd1",
        interface="org.freedesktop.systemd1.Manager",
        member="RestartUnit",
        destination="org.freedesktop.systemd1",
        signature="ss",
        body=("a.service", "replace"),
    )
    assert encode_message(msg) == expected
    assert message_size(expected[:16]) == len(expected)
    assert decode_message(expected) == msg


@pytest.mark.parametrize("endian", ["l", "B"])
def test_values_round_trip_in_both_byte_orders(endian: str) -> None:
    sig = "ya{sv}(ix)asbnqtdgo"
    values = (
        7,
        {"a": ("u", 1), "b": ("as", ["x", "y"])},
        (-5, 2**40),
        ["one", "", "three"],
        True,
        -2,
        65535,
        2**64 - 1,
        1.5,
        "a{sv}",
        "/obj/path",
    )
    assert unmarshal(sig, marshal(sig, values, endian), endian) == values


def test_big_endian_message_decodes() -> None:
    msg = Message(ERROR, 9, error_name="x.Y", reply_serial=3, signature="s", body=("why",))
    data = encode_message(msg, "B")
    assert data[:1] == b"B"
    assert decode_message(data) == msg


def test_unknown_header_fields_are_ignored() -> None:
    msg = Message(METHOD_RETURN, 4, reply_serial=1)
    data = bytearray(encode_message(msg))
    # Append a field with code 42 (variant "u") to the header array.
    (fields_len,) = struct.unpack_from("<I", data, 12)
    header = bytes(data[16 : 16 + fields_len])
    extra = _pad8(header) + bytes([42, 1]) + b"u\0" + struct.pack("<I", 5)
    rebuilt = b"l\x02\x00\x01" + struct.pack("<III", 0, 4, len(extra)) + _pad8(extra)
    assert decode_message(rebuilt).reply_serial == 1


@pytest.mark.parametrize(
    "head",
    [
        b"x\x01\x00\x01" + b"\0" * 12,  # bad byte order
        b"l\x01\x00\x02" + b"\0" * 12,  # protocol version 2
        b"l\x01\x00\x01" + struct.pack("<III", 1 << 27, 1, 0),  # too big
        b"l\x01\x00",  # short
    ],
)
def test_bad_message_headers_are_protocol_errors(head: bytes) -> None:
    with pytest.raises(ProtocolError):
        message_size(head)


def test_truncated_message_is_a_protocol_error() -> None:
    data = encode_message(Message(METHOD_RETURN, 1, reply_serial=1, signature="s", body=("x",)))
    with pytest.raises(ProtocolError):
        decode_message(data[:-3])


def test_signatures() -> None:
    assert split_signature("sa{sv}(ii)ao") == ["s", "a{sv}", "(ii)", "ao"]
    for bad in ("a", "(ii", "z"):
        with pytest.raises(ProtocolError):
            split_signature(bad)


def test_addresses() -> None:
    assert parse_address("unix:path=/run/dbus/system_bus_socket") == ["/run/dbus/system_bus_socket"]
    assert parse_address("tcp:host=x,port=1;unix:abstract=foo,guid=ab;unix:path=/a%2cb%20") == [
        "\0foo",
        "/a,b ",
    ]
    assert parse_address("") == []
    odd = "/tmp/a b,c;d=e%f/ü.sock"
    assert parse_address("unix:path=" + dbus.escape(odd)) == [odd]
    assert dbus.escape("/run/dbus/system_bus_socket") == "/run/dbus/system_bus_socket"


def test_system_bus_address_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)
    assert dbus.system_bus_address() == "unix:path=/run/dbus/system_bus_socket"
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/elsewhere")
    assert dbus.system_bus_address() == "unix:path=/elsewhere"


def test_open_without_a_unix_transport_is_einval() -> None:
    with pytest.raises(OSError) as raised:
        dbus.Connection.open("tcp:host=localhost,port=1")
    assert raised.value.errno == errno.EINVAL


def test_open_reports_the_connect_error(tmp_path: Path) -> None:
    with pytest.raises(OSError) as raised:
        dbus.Connection.open(f"unix:path={tmp_path}/missing")
    assert raised.value.errno == errno.ENOENT


def test_call_skips_signals_and_other_replies(tmp_path: Path) -> None:
    """The fake bus answers Hello after a signal and a reply to another serial."""
    with FakeBus(tmp_path / "bus") as bus, dbus.Connection.open(bus.address, 5) as conn:
        assert conn.unique_name == ":1.42"
        reply = conn.call("org.freedesktop.systemd1", "/", "i.f", "RestartUnit", "ss", ("a", "b"))
        assert reply.body == ("/org/freedesktop/systemd1/job/1234",)
        bus.error = ("org.example.Failed", "it broke")
        with pytest.raises(dbus.DBusError) as raised:
            conn.call("org.freedesktop.systemd1", "/", "i.f", "RestartUnit", "ss", ("a", "b"))
        assert (raised.value.name, raised.value.message) == ("org.example.Failed", "it broke")


@pytest.mark.skipif(DBUS_DAEMON is None, reason="dbus-daemon is not installed")
def test_a_real_dbus_daemon_accepts_us(tmp_path: Path) -> None:
    daemon = PrivateDbusDaemon(tmp_path)
    try:
        with dbus.Connection.open(daemon.address, 5) as conn:
            assert conn.unique_name is not None and conn.unique_name.startswith(":")
            names = conn.call(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "ListNames"
            )
            assert conn.unique_name in names.body[0]
            uid = conn.call(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "GetConnectionUnixUser",
                "s",
                (conn.unique_name,),
            )
            assert uid.body == (os.geteuid(),)
    finally:
        daemon.stop()
