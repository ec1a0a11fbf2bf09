"""systemd's service notification protocol (sd_notify(3)), in a few lines of stdlib.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``: a unix datagram socket, a path
(``/run/systemd/notify``) or an abstract name (``@...``). Each message is one datagram
of ``KEY=VALUE`` lines. The daemon sends ``READY=1`` after its first tick,
``WATCHDOG=1`` and a one-line ``STATUS=`` after every tick (so a hung tick stops the
pings and ``WatchdogSec=`` restarts it) and ``STOPPING=1`` when it exits.

The variables are removed from the environment once read, as sd_notify's
``unset_environment`` does, so the commands the daemon runs (prekill hooks) do not
talk to systemd in its name. Without ``$NOTIFY_SOCKET`` every call is a no-op, and a
failed send is logged once, never raised: notification must not stop the daemon.
"""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping

from oomd import log

ENV_SOCKET = "NOTIFY_SOCKET"
ENV_WATCHDOG_USEC = "WATCHDOG_USEC"
ENV_WATCHDOG_PID = "WATCHDOG_PID"


def socket_address(value: str) -> str | None:
    """The address to send to for a ``$NOTIFY_SOCKET`` value: a path, or an abstract
    name (``@name`` becomes ``\\0name``); None for anything else (e.g. ``vsock:``)."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    return None


class Notifier:
    """Where to send notifications, read (and removed) from the environment once."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        #: ``$WATCHDOG_USEC`` when the watchdog is meant for this process, else None.
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_env(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        raw = env.pop(ENV_SOCKET, None)
        usec_text = env.pop(ENV_WATCHDOG_USEC, None)
        pid_text = env.pop(ENV_WATCHDOG_PID, None)
        address = socket_address(raw) if raw else None
        if raw and address is None:
            log.always(f"Warning: ${ENV_SOCKET}={raw!r} is not a unix socket; not notifying")
        usec = None
        if usec_text and (not pid_text or pid_text == str(os.getpid())):
            try:
                usec = int(usec_text)
            except ValueError:
                log.always(f"Warning: ignoring ${ENV_WATCHDOG_USEC}={usec_text!r}")
            usec = usec if usec is not None and usec > 0 else None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str) -> bool:
        """Send one datagram of ``KEY=VALUE`` lines (``ready="1"`` -> ``READY=1``);
        True if it was sent."""
        if self.address is None:
            return False
        text = "".join(f"{key.upper()}={_one_line(value)}\n" for key, value in fields.items())
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(text.encode(errors="replace"), self.address)
        except OSError as e:
            if not self._failed:
                log.always(f"Warning: cannot notify systemd at ${ENV_SOCKET}: {e.strerror or e}")
                self._failed = True
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(value: str) -> str:
    return value.replace("\n", " ")
