"""``systemd_restart``: an action that restarts a systemd unit (upstream
``plugins/systemd/SystemdRestart-inl.h`` and ``BaseSystemdPlugin.cpp``).

Args: ``service`` (required, non-empty), ``post_action_delay`` (non-negative int,
default 15), ``dry`` (bool), ``machine_type`` (upstream HEAD: the unit lives in that
systemd-machined container).

A run asks systemd's D-Bus API, ``org.freedesktop.systemd1.Manager.RestartUnit(service,
"replace")`` on the system bus (``DBUS_SYSTEM_BUS_ADDRESS`` or
``/run/dbus/system_bus_socket``, as sd-bus), through jeepney (:mod:`oomd.dbus`, the
optional extra ``oomd[dbus]``); with ``machine_type`` the bus is the container's (its
leader's root, from ``/run/systemd/machines/<name>``, as
``sd_bus_open_system_machine``). Success logs ``Queued service job as <job path>``,
writes ``oomd kill: restarted systemd service=<service>`` (`` (dry)`` appended in dry
mode) to kmsg, adds 1 to the ``oomd.restarts`` stat (set to 0 at start-up) and returns
STOP. Failure logs upstream's ``Failed to connect to system bus: ...`` / ``Failed to
issue method call: ...`` / ``Failed to parse response message: ...`` and returns
CONTINUE.

Deliberate differences (docs/compatibility.md):

* Without jeepney installed, or without a system bus (its socket missing or refusing
  connections: no dbus-daemon), the restart goes through ``systemctl [--machine=M]
  restart --no-block -- <service>`` (argv, no shell; as root systemctl reaches systemd
  over its private socket), and the log says so. Upstream just fails.
* Upstream then sleeps ``post_action_delay`` seconds inside the tick, stalling every
  other ruleset (kill rulesets included). Here the tick goes on, and this ruleset's
  actions pause for ``post_action_delay`` plus the ruleset's own post_action_delay -
  the pause upstream's sleep-then-pause gives this ruleset.
* ``--dry-run`` makes it behave as with ``dry=true``.

The bus address, the machines directory, the container bus path and systemctl come from
the plugin's host (``env.host``), so tests point them at stand-ins and never reach the
host's systemd.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess

from oomd import dbus
from oomd.plugin import (
    Action,
    Host,
    OomdContext,
    PluginEnv,
    PluginRet,
    arg,
    log,
    parse_bool,
    parse_string,
    parse_unsigned_int,
)
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

RESTARTS = "oomd.restarts"

#: Seconds a D-Bus call or systemctl may take (sd-bus's default call timeout).
TIMEOUT = dbus.DEFAULT_TIMEOUT

_SYSTEMD = "org.freedesktop.systemd1"
_MANAGER_PATH = "/org/freedesktop/systemd1"
_MANAGER = "org.freedesktop.systemd1.Manager"
#: systemd's machine_name_is_valid: a hostname of at most 64 characters.
_MACHINE_NAME = re.compile(r"(?=.{1,64}$)[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


def parse_service(value: str, env: PluginEnv) -> str:
    if not value:
        raise ValueError("service is empty")
    return value


class NoBus(Exception):
    """No system bus to talk to (the fallback to systemctl applies)."""


def machine_bus_address(host: Host, machine: str) -> str:
    """The system bus address of a systemd-machined container (``.host``: ours).
    Raises OSError as sd-bus does: EINVAL for a bad name, ENXIO for an unknown
    machine, EIO for one that is not a container."""
    if machine == ".host":
        return host.system_bus_address or dbus.system_bus_address(host.run_root)
    if not _MACHINE_NAME.fullmatch(machine) or machine in (".", ".."):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    try:
        with open(os.path.join(host.machines_dir, machine), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise OSError(errno.ENXIO, os.strerror(errno.ENXIO)) from None
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    if fields.get("CLASS", "container") != "container":
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    leader = fields.get("LEADER", "")
    if not leader.isdigit() or int(leader) <= 0:
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    return dbus.unix_address(host.machine_bus_path(int(leader)))


def restart_over_dbus(host: Host, service: str, machine: str) -> bool:
    """RestartUnit(service, "replace") on the (machine's) system bus, logging as
    upstream's talkToSystemdManager. Raises NoBus when there is no bus at all."""
    try:
        address = (
            machine_bus_address(host, machine)
            if machine
            else host.system_bus_address or dbus.system_bus_address(host.run_root)
        )
    except OSError as e:
        log.info(f"Failed to connect to system bus: {e.strerror or e}")
        return False
    try:
        signature, body = dbus.call(
            address,
            _SYSTEMD,
            _MANAGER_PATH,
            _MANAGER,
            "RestartUnit",
            "ss",
            (service, "replace"),
            TIMEOUT,
        )
    except dbus.ConnectFailed as e:
        log.info(f"Failed to connect to system bus: {e.message}")
        if e.no_bus:
            raise NoBus from None
        return False
    except dbus.CallFailed as e:
        log.info(f"Failed to issue method call: {e.message}")
        return False
    if signature[:1] != "o":
        log.info(f"Failed to parse response message: {os.strerror(errno.ENXIO)}")
        return False
    log.info(f"Queued service job as {body[0]}")
    return True


def find_systemctl(host: Host) -> str | None:
    if host.systemctl is not None:
        return host.systemctl
    found = shutil.which("systemctl")
    if found:
        return found
    for candidate in ("/usr/bin/systemctl", "/bin/systemctl"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def systemctl_argv(systemctl: str, service: str, machine: str) -> list[str]:
    machine_args = [f"--machine={machine}"] if machine else []
    return [systemctl, *machine_args, "restart", "--no-block", "--", service]


def restart_with_systemctl(host: Host, service: str, machine: str, why: str) -> bool:
    """``systemctl restart --no-block`` (queues the job and returns, like RestartUnit);
    ``why`` starts the log line (e.g. "No system bus")."""
    systemctl = find_systemctl(host)
    if systemctl is None:
        log.info(f"{why} and no systemctl: cannot restart the service")
        return False
    argv = systemctl_argv(systemctl, service, machine)
    log.info(f"{why}; restarting through: {' '.join(argv)}")
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        log.info(f"Failed to restart through {systemctl}: timed out after {TIMEOUT:g}s")
        return False
    except OSError as e:
        log.info(f"Failed to run {systemctl}: {e.strerror or e}")
        return False
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        log.info(
            f"Failed to restart through {systemctl}: exit status {done.returncode}"
            + (f": {detail[-1]}" if detail else "")
        )
        return False
    log.info(f"Queued service job through {systemctl}")
    return True


class SystemdRestart(Action):
    name = "systemd_restart"
    service: str = arg(parse_service, required=True)
    post_action_delay: int = arg(parse_unsigned_int, default=15)
    dry: bool = arg(parse_bool, default=False)
    machine_type: str = arg(parse_string, default="")

    def setup(self) -> None:
        self.env.stats.set(RESTARTS, 0)

    @property
    def is_dry(self) -> bool:
        return self.dry or self.env.dry_run

    def restart_service(self) -> bool:
        """Upstream's BaseSystemdPlugin::restartService, with the systemctl fallback."""
        if self.machine_type:
            log.info(f'Restarting systemd service "{self.service}" on machine={self.machine_type}')
        else:
            log.info(f'Restarting systemd service "{self.service}"')
        host = self.env.host
        if not dbus.available():
            return restart_with_systemctl(
                host, self.service, self.machine_type, "No D-Bus client (oomd[dbus])"
            )
        try:
            return restart_over_dbus(host, self.service, self.machine_type)
        except NoBus:
            return restart_with_systemctl(host, self.service, self.machine_type, "No system bus")

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        where = f" on machine {self.machine_type}" if self.machine_type else ""
        return {
            "description": f"restarts systemd unit {self.service}{where}, then pauses "
            f"{self.post_action_delay} s",
            "dry": self.is_dry,
        }

    def run(self, ctx: OomdContext) -> PluginRet:
        dry = self.is_dry
        if dry:
            log.info(f"DRY-RUN: restarting service {self.service}")
            ok = True
        else:
            ok = self.restart_service()
        if not ok:
            return PluginRet.CONTINUE
        self.env.kmsg.write(f"restarted systemd service={self.service}{' (dry)' if dry else ''}")
        self.env.stats.increment(RESTARTS)
        ruleset = ctx.invoking_ruleset
        if ruleset is not None:
            ruleset.pause_actions(self.post_action_delay + ruleset.post_action_delay)
        return PluginRet.STOP
