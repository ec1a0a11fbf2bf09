"""The in-process stats store (upstream Stats.cpp; StatsTest.BasicStats,
BasicGetAndClear)."""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from oomd import cli
from oomd.stats import (
    CORE_KEYS,
    KILLS,
    Stats,
    StatsClientError,
    StatsServer,
    dump_stats,
    request,
    styled_json,
)


def test_set_increment_get() -> None:
    stats = Stats()
    assert stats.get(KILLS) is None
    stats.set(KILLS, 0)
    stats.increment(KILLS)
    stats.increment("other", 5)
    assert stats.get(KILLS) == 1
    assert stats.snapshot() == {KILLS: 1, "other": 5}


def test_reset_zeroes_values_but_keeps_keys() -> None:
    stats = Stats()
    stats.set(KILLS, 3)
    stats.reset()
    assert stats.snapshot() == {KILLS: 0}


# --- the socket (upstream Stats.cpp / StatsClient.cpp; StatsTest.InvalidRequests,
# BasicGetAndClear, LongJson; byte formats checked against the Debian 0.5.0 daemon) ---


UPSTREAM_GET = (
    b'{\n\t"body" : \n\t{\n\t\t"oomd.dropin.added" : 0,\n\t\t"oomd.dropin.fired" : 0,'
    b'\n\t\t"oomd.kills" : 0\n\t},\n\t"error" : 0\n}\n'
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Stats, Path]]:
    stats = Stats()
    for key in CORE_KEYS:
        stats.set(key, 0)
    path = tmp_path / "oomd-stats.socket"
    srv = StatsServer(stats, str(path))
    srv.start()
    yield stats, path
    srv.close()


def raw_request(path: Path, payload: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def test_get_reply_is_byte_identical_to_upstream(server: tuple[Stats, Path]) -> None:
    assert raw_request(server[1], b"g\n") == UPSTREAM_GET


def test_reset_zeroes_values_keeps_keys_and_replies_empty_body(server: tuple[Stats, Path]) -> None:
    stats, path = server
    stats.increment("oomd.kills", 3)
    assert raw_request(path, b"r\n") == b'{\n\t"body" : {},\n\t"error" : 0\n}\n'
    assert stats.snapshot() == dict.fromkeys(CORE_KEYS, 0)


@pytest.mark.parametrize("payload", [b"x\n", b"\n", b"", b"\0"])
def test_unknown_or_empty_request_is_error_1(
    server: tuple[Stats, Path], payload: bytes, oolog: Path
) -> None:
    assert raw_request(server[1], payload) == b'{\n\t"body" : {},\n\t"error" : 1\n}\n'


def test_only_the_first_byte_counts_and_noop_is_accepted(server: tuple[Stats, Path]) -> None:
    assert raw_request(server[1], b"gibberish\n") == UPSTREAM_GET
    assert raw_request(server[1], b"0\n") == b'{\n\t"body" : {},\n\t"error" : 0\n}\n'


def test_many_keys_round_trip(server: tuple[Stats, Path]) -> None:
    """StatsTest.LongJson (scaled down)."""
    stats, path = server
    for i in range(2000):
        stats.set(f"key.{i:05d}", i)
    text = cli_dump(path)
    assert '\t"key.01999" : 1999,\n' in text


def cli_dump(path: Path) -> str:
    return dump_stats(str(path))


def test_socket_is_private_to_root(server: tuple[Stats, Path]) -> None:
    """Deliberate difference: upstream makes the socket 0666 (anyone may reset)."""
    assert stat.S_IMODE(server[1].stat().st_mode) == 0o600


def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_text("stale")
    srv = StatsServer(Stats(), str(path))
    srv.start()
    try:
        assert stat.S_ISSOCK(path.stat().st_mode)
    finally:
        srv.close()
    assert not path.exists()


def test_cli_dump_prints_body_and_blank_line_like_upstream(
    server: tuple[Stats, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    stats, path = server
    stats.increment("oomd.kills", 2)
    assert cli.main(["-d", "-D", str(path.parent)]) == 0
    out = capfd.readouterr().out
    assert (
        out
        == '{\n\t"oomd.dropin.added" : 0,\n\t"oomd.dropin.fired" : 0,\n\t"oomd.kills" : 2\n}\n\n'
    )


def test_cli_dump_then_reset(server: tuple[Stats, Path], capfd: pytest.CaptureFixture[str]) -> None:
    stats, path = server
    stats.increment("oomd.kills", 2)
    assert cli.main(["-d", "-r", "-D", str(path.parent)]) == 0
    assert '"oomd.kills" : 2' in capfd.readouterr().out
    assert stats.get("oomd.kills") == 0


def test_cli_without_daemon_fails_with_upstream_messages(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["-d", "-D", str(tmp_path)]) == 1
    err = capfd.readouterr().err
    assert "Error: connecting to stats socket: " in err
    assert f"Socket path: {tmp_path}/oomd-stats.socket" in err
    assert "Failed to retrieve stats" in err
    assert cli.main(["-r", "-D", str(tmp_path)]) == 1
    assert "Reset stats error: received error code= 1" in capfd.readouterr().err


def test_styled_json_of_empty_and_nested() -> None:
    assert styled_json({}) == "{}"
    assert (
        styled_json({"a": {"b": 1}, "c": {}})
        == '{\n\t"a" : \n\t{\n\t\t"b" : 1\n\t},\n\t"c" : {}\n}'
    )


def test_a_socket_path_too_long_for_a_unix_socket_is_a_clear_error(tmp_path: Path) -> None:
    """Issue 12: the daemon printed ``Error binding ...: None``."""
    path = str(tmp_path / ("s" * 120))
    with pytest.raises(OSError) as info:
        StatsServer(Stats(), path).start()
    assert info.value.strerror == "path longer than 107 bytes, too long for a unix socket"
    with pytest.raises(StatsClientError) as client:
        request(path, "g")
    assert "path longer than 107 bytes" in str(client.value)
