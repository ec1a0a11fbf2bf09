"""One D-Bus method call on a system bus, through jeepney (the optional extra
``oomd[dbus]``; pure Python, no C library).

jeepney is imported on the first call, never at start-up: a daemon without
``systemd_restart`` pays nothing, and one without jeepney installed uses ``systemctl``
instead (:func:`available`). Failures come back as :class:`ConnectFailed` /
:class:`CallFailed` carrying sd-bus-like messages for upstream's log lines.
"""

from __future__ import annotations

import errno
import importlib.util
import os

from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

#: sd-bus's default method call timeout, in seconds.
DEFAULT_TIMEOUT = 25.0

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_/.\\")


class ConnectFailed(Exception):
    """No connection to the bus. ``no_bus``: nothing there at all (the socket is
    missing or nobody listens), so another way to reach systemd may be tried."""

    def __init__(self, message: str, no_bus: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.no_bus = no_bus


class CallFailed(Exception):
    """Connected, but the call failed (an error reply, a timeout, a broken bus)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def available() -> bool:
    """Whether jeepney is installed (without importing it)."""
    return importlib.util.find_spec("jeepney") is not None


def system_bus_address(run_root: str = "/run") -> str:
    """The system bus sd-bus would use: ``DBUS_SYSTEM_BUS_ADDRESS``, else the socket
    under ``run_root``."""
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or unix_address(
        f"{run_root}/dbus/system_bus_socket"
    )


def unix_address(path: str) -> str:
    """``unix:path=<path>`` with the D-Bus address escaping."""
    escaped = "".join(chr(b) if b in _SAFE else f"%{b:02x}" for b in os.fsencode(path))
    return "unix:path=" + escaped


def _strerror(e: OSError) -> str:
    if isinstance(e, TimeoutError):
        return os.strerror(errno.ETIMEDOUT)
    return e.strerror or str(e)


def _connect(address: str, timeout: float) -> Any:
    """A connection to the first reachable unix entry of ``address`` (as sd-bus)."""
    from jeepney.auth import AuthenticationError
    from jeepney.bus import get_connectable_addresses
    from jeepney.io.threading import open_dbus_connection

    try:
        paths = list(get_connectable_addresses(address))
    except (RuntimeError, ValueError):
        raise ConnectFailed(os.strerror(errno.EINVAL)) from None
    last: OSError | None = None
    for path in paths:
        try:
            return open_dbus_connection(bus=unix_address(path), auth_timeout=timeout)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            last = e
        except AuthenticationError:
            raise ConnectFailed("authentication rejected") from None
        except OSError as e:
            raise ConnectFailed(_strerror(e)) from None
        except ValueError as e:  # a malformed reply during authentication or Hello
            raise ConnectFailed(str(e) or "protocol error") from None
    assert last is not None
    raise ConnectFailed(_strerror(last), no_bus=True)


def call(
    address: str,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str,
    body: tuple[Any, ...],
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[str, tuple[Any, ...]]:
    """Call ``member`` and return the reply's (signature, body). Raises ConnectFailed
    or CallFailed; needs jeepney (check :func:`available`)."""
    from jeepney import DBusAddress, MessageType, new_method_call
    from jeepney.io.threading import DBusRouter
    from jeepney.low_level import HeaderFields

    conn = _connect(address, timeout)
    try:
        message = new_method_call(
            DBusAddress(path, bus_name=destination, interface=interface),
            member,
            signature,
            body,
        )
        with DBusRouter(conn) as router:
            reply = router.send_and_get_reply(message, timeout=timeout)
    except OSError as e:
        raise CallFailed(_strerror(e)) from None
    except ValueError as e:
        raise CallFailed(str(e) or "protocol error") from None
    finally:
        conn.close()
    if reply.header.message_type == MessageType.error:
        name = reply.header.fields.get(HeaderFields.error_name, "")
        data = reply.body
        detail = data[0] if data and isinstance(data[0], str) and data[0] else name
        raise CallFailed(str(detail))
    return str(reply.header.fields.get(HeaderFields.signature, "")), tuple(reply.body)
