"""systemd_restart (upstream plugins/systemd/SystemdRestart-inl.h, BaseSystemdPlugin.cpp;
SystemdPluginsTest: RestartService, RestartServiceDry, RestartServiceWithMachineType;
reference 5.18).

Every test talks to a stand-in on the harness's scratch host: a real private
dbus-daemon with a jeepney-written fake systemd owning ``org.freedesktop.systemd1``
(tests/support/dbus_bus.py), or a fake systemctl script. The harness's host points
/run, the bus and systemctl into the test's tmp dir, so nothing here can reach the
host's systemd.
"""

from __future__ import annotations

import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oomd import dbus
from oomd.config.errors import ConfigError
from oomd.engine.plugin import PluginRet
from oomd.plugins import systemd_restart
from oomd.plugins.systemd_restart import SystemdRestart
from tests.support.dbus_bus import DBUS_DAEMON, JOB, FakeSystemd, PrivateDbusDaemon
from tests.support.harness import Harness

needs_bus = pytest.mark.skipif(
    DBUS_DAEMON is None or not dbus.available(),
    reason="needs dbus-daemon (Debian: dbus-daemon) and jeepney (pip install 'oomd[dbus]')",
)


def config(actions: list[dict[str, Any]], **ruleset: Any) -> dict[str, Any]:
    return {
        "rulesets": [
            {
                "name": "restart",
                "detectors": [["always", {"name": "continue"}]],
                "actions": actions,
                **ruleset,
            }
        ]
    }


def action(**args: Any) -> dict[str, Any]:
    return {"name": "systemd_restart", "args": {k: str(v) for k, v in args.items()}}


def load(h: Harness, dry_run: bool = False, **args: Any) -> SystemdRestart:
    h.load(config([action(**args)]), dry_run=dry_run)
    assert h.engine is not None
    plugin = h.engine.rulesets[0].actions[0]
    assert isinstance(plugin, SystemdRestart)
    return plugin


def run(h: Harness, plugin: SystemdRestart) -> PluginRet:
    h.ctx.refresh()
    return plugin.run(h.ctx)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: unix socket paths are limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="oomd-bus-", dir="/tmp"))
    yield path
    for child in sorted(path.rglob("*"), reverse=True):
        if child.is_dir() and not child.is_symlink():
            child.rmdir()
        else:
            child.unlink()
    path.rmdir()


@pytest.fixture
def bus_daemon(short_dir: Path) -> Iterator[PrivateDbusDaemon]:
    if DBUS_DAEMON is None or not dbus.available():
        pytest.skip("needs dbus-daemon (Debian: dbus-daemon) and jeepney (oomd[dbus])")
    daemon = PrivateDbusDaemon(short_dir / "bus")
    yield daemon
    daemon.stop()


@pytest.fixture
def bus(harness: Harness, bus_daemon: PrivateDbusDaemon) -> Iterator[FakeSystemd]:
    """A fake systemd on the harness host's system bus."""
    harness.env.host.system_bus_address = bus_daemon.address
    with FakeSystemd(bus_daemon.address) as fake:
        yield fake


def restarted(bus: FakeSystemd) -> list[str]:
    return [body[0] for _, body in bus.calls]


def fake_systemctl(
    h: Harness, tmp_path: Path, exit_status: int = 0, stderr: str = ""
) -> tuple[Path, Path]:
    """A systemctl (set on the harness's host) that records its argv, one per line,
    and exits as told."""
    script = tmp_path / "systemctl"
    record = tmp_path / "systemctl.argv"
    script.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do printf "%s\\n" "$a"; done > {record}\n'
        + (f"printf '%s\\n' '{stderr}' >&2\n" if stderr else "")
        + f"exit {exit_status}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    h.env.host.systemctl = str(script)
    return script, record


def machine(h: Harness, name: str, content: str) -> None:
    machines = Path(h.env.host.machines_dir)
    machines.mkdir(parents=True, exist_ok=True)
    (machines / name).write_text(content)


# --- upstream's SystemdPluginsTest ---------------------------------------------------------


@needs_bus
def test_restart_service(harness: Harness, bus: FakeSystemd, oolog: Path) -> None:
    """RestartService: RestartUnit(service, "replace") on systemd's manager, STOP."""
    plugin = load(harness, service="some.service", post_action_delay=0, dry="false")
    assert run(harness, plugin) is PluginRet.STOP
    assert bus.calls == [("ss", ("some.service", "replace"))]
    log = oolog.read_text()
    assert 'Restarting systemd service "some.service"' in log
    assert f"Queued service job as {JOB}" in log
    assert harness.kmsg.lines == ["oomd kill: restarted systemd service=some.service"]
    assert harness.stats.get("oomd.restarts") == 1


@needs_bus
def test_restart_service_dry(harness: Harness, bus: FakeSystemd, oolog: Path) -> None:
    """RestartServiceDry: no call at all, still STOP, counted, kmsg says (dry)."""
    plugin = load(harness, service="some.service", post_action_delay=0, dry="true")
    assert run(harness, plugin) is PluginRet.STOP
    assert bus.calls == []
    assert "DRY-RUN: restarting service some.service" in oolog.read_text()
    assert harness.kmsg.lines == ["oomd kill: restarted systemd service=some.service (dry)"]
    assert harness.stats.get("oomd.restarts") == 1


@needs_bus
def test_restart_service_with_machine_type(
    harness: Harness, bus: FakeSystemd, short_dir: Path, oolog: Path
) -> None:
    """RestartServiceWithMachineType: the restart goes to that machine's system bus
    (its leader's root, as sd_bus_open_system_machine), not the host's."""
    harness.env.host.proc_root = str(short_dir / "proc")
    machine(harness, "netos", "NAME=netos\nCLASS=container\nLEADER=4242\n")
    machine_daemon = PrivateDbusDaemon(Path(harness.env.host.machine_bus_path(4242)))
    try:
        with FakeSystemd(machine_daemon.address) as machine_bus:
            plugin = load(
                harness,
                service="wedge_agent.service",
                post_action_delay=0,
                dry="false",
                machine_type="netos",
            )
            assert run(harness, plugin) is PluginRet.STOP
            assert restarted(machine_bus) == ["wedge_agent.service"]
    finally:
        machine_daemon.stop()
    assert bus.calls == []
    assert 'Restarting systemd service "wedge_agent.service" on machine=netos' in oolog.read_text()


# --- args ---------------------------------------------------------------------------------


def test_args_and_defaults(harness: Harness) -> None:
    plugin = load(harness, service="a.service")
    assert (plugin.post_action_delay, plugin.dry, plugin.machine_type) == (15, False, "")
    assert harness.stats.get("oomd.restarts") == 0  # set at init, before any run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "service"),
        ({"service": ""}, "service is empty"),
        ({"service": "a", "post_action_delay": "-1"}, "post_action_delay"),
        ({"service": "a", "post_action_delay": "x"}, "post_action_delay"),
        ({"service": "a", "dry": "yes"}, "dry"),
        ({"service": "a", "cgroup": "x"}, "cgroup"),
    ],
)
def test_invalid_args_are_rejected(harness: Harness, args: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        harness.load(config([{"name": "systemd_restart", "args": args}]))


@needs_bus
def test_daemon_dry_run_makes_it_dry(harness: Harness, bus: FakeSystemd) -> None:
    plugin = load(harness, dry_run=True, service="some.service")
    assert run(harness, plugin) is PluginRet.STOP
    assert bus.calls == []
    assert harness.kmsg.lines == ["oomd kill: restarted systemd service=some.service (dry)"]


# --- failures on the bus ------------------------------------------------------------------


@needs_bus
def test_error_reply_continues(harness: Harness, bus: FakeSystemd, oolog: Path) -> None:
    bus.error = ("org.freedesktop.systemd1.NoSuchUnit", "Unit nope.service not found.")
    plugin = load(harness, service="nope.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert "Failed to issue method call: Unit nope.service not found." in oolog.read_text()
    assert harness.kmsg.lines == []
    assert harness.stats.get("oomd.restarts") == 0


@needs_bus
def test_reply_without_a_job_path_continues(
    harness: Harness, bus: FakeSystemd, oolog: Path
) -> None:
    bus.reply_signature = "u"
    plugin = load(harness, service="some.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert "Failed to parse response message: No such device or address" in oolog.read_text()


@needs_bus
def test_nobody_owning_systemds_name_continues(
    harness: Harness, bus_daemon: PrivateDbusDaemon, oolog: Path
) -> None:
    """The bus itself answers with an error (its message is logged)."""
    harness.env.host.system_bus_address = bus_daemon.address
    plugin = load(harness, service="some.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert (
        "Failed to issue method call: The name org.freedesktop.systemd1 was not provided"
        in oolog.read_text()
    )


@needs_bus
def test_rejected_authentication_continues_without_fallback(
    harness: Harness, short_dir: Path, tmp_path: Path, oolog: Path
) -> None:
    """A bus that accepts only ANONYMOUS rejects our EXTERNAL: no systemctl then."""
    daemon = PrivateDbusDaemon(short_dir / "anon", auth="ANONYMOUS")
    try:
        harness.env.host.system_bus_address = daemon.address
        _, record = fake_systemctl(harness, tmp_path)
        plugin = load(harness, service="some.service")
        assert run(harness, plugin) is PluginRet.CONTINUE
    finally:
        daemon.stop()
    assert "Failed to connect to system bus: authentication rejected" in oolog.read_text()
    assert not record.exists()


@needs_bus
def test_silent_systemd_times_out_and_continues(
    harness: Harness, bus: FakeSystemd, monkeypatch: pytest.MonkeyPatch, oolog: Path
) -> None:
    monkeypatch.setattr(systemd_restart, "TIMEOUT", 0.5)
    bus.silent = True
    plugin = load(harness, service="some.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert len(bus.calls) == 1
    assert "Failed to issue method call: Connection timed out" in oolog.read_text()


@needs_bus
def test_dbus_system_bus_address_is_honoured(
    harness: Harness, bus_daemon: PrivateDbusDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As sd-bus: without a configured address, ``DBUS_SYSTEM_BUS_ADDRESS`` names the
    system bus (the first reachable unix entry of the list)."""
    harness.env.host.system_bus_address = None
    monkeypatch.setenv(
        "DBUS_SYSTEM_BUS_ADDRESS",
        f"tcp:host=localhost;unix:path={tmp_path}/gone;{bus_daemon.address}",
    )
    with FakeSystemd(bus_daemon.address) as fake:
        plugin = load(harness, service="some.service")
        assert run(harness, plugin) is PluginRet.STOP
        assert restarted(fake) == ["some.service"]


@needs_bus
@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("unknown", None, "No such device or address"),
        ("../etc", None, "Invalid argument"),
        ("vm1", "CLASS=vm\nLEADER=1\n", "Input/output error"),
        ("broken", "CLASS=container\n", "Input/output error"),
    ],
)
def test_machine_that_cannot_be_reached_continues(
    harness: Harness, tmp_path: Path, oolog: Path, name: str, content: str | None, error: str
) -> None:
    Path(harness.env.host.machines_dir).mkdir(parents=True)
    if content is not None:
        machine(harness, name, content)
    _, record = fake_systemctl(harness, tmp_path)
    plugin = load(harness, service="a.service", machine_type=name)
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert f"Failed to connect to system bus: {error}" in oolog.read_text()
    assert not record.exists()


def test_unix_addresses_are_escaped() -> None:
    assert dbus.unix_address("/run/a b,c=d%") == "unix:path=/run/a%20b%2cc%3dd%25"


# --- without a bus: systemctl -------------------------------------------------------------


@needs_bus
def test_no_bus_falls_back_to_systemctl(harness: Harness, tmp_path: Path, oolog: Path) -> None:
    script, record = fake_systemctl(harness, tmp_path)
    plugin = load(harness, service="-weird name.service")
    assert run(harness, plugin) is PluginRet.STOP
    assert record.read_text().splitlines() == ["restart", "--no-block", "--", "-weird name.service"]
    log = oolog.read_text()
    assert "Failed to connect to system bus: No such file or directory" in log
    assert (
        f"No system bus; restarting through: {script} restart --no-block -- -weird name.service"
        in log
    )
    assert f"Queued service job through {script}" in log
    assert harness.kmsg.lines == ["oomd kill: restarted systemd service=-weird name.service"]
    assert harness.stats.get("oomd.restarts") == 1


def test_without_jeepney_systemctl_is_the_way(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oolog: Path
) -> None:
    """Without the ``oomd[dbus]`` extra the bus is not tried at all."""
    monkeypatch.setattr(dbus, "available", lambda: False)
    script, record = fake_systemctl(harness, tmp_path)
    plugin = load(harness, service="a.service")
    assert run(harness, plugin) is PluginRet.STOP
    assert record.read_text().splitlines() == ["restart", "--no-block", "--", "a.service"]
    log = oolog.read_text()
    assert "Failed to connect to system bus" not in log
    assert (
        f"No D-Bus client (oomd[dbus]); restarting through: {script} restart --no-block -- a.service"
        in log
    )
    assert harness.kmsg.lines == ["oomd kill: restarted systemd service=a.service"]


@needs_bus
def test_bus_socket_without_a_listener_falls_back_to_systemctl(
    harness: Harness, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(dead))
    sock.close()  # the file stays, nobody listens: ECONNREFUSED
    harness.env.host.system_bus_address = f"unix:path={dead}"
    _, record = fake_systemctl(harness, tmp_path)
    plugin = load(harness, service="a.service")
    assert run(harness, plugin) is PluginRet.STOP
    assert record.exists()


@needs_bus
def test_no_bus_on_a_machine_falls_back_to_systemctl_machine(
    harness: Harness, tmp_path: Path
) -> None:
    machine(harness, "netos", "CLASS=container\nLEADER=4242\n")
    _, record = fake_systemctl(harness, tmp_path)
    plugin = load(harness, service="a.service", machine_type="netos")
    assert run(harness, plugin) is PluginRet.STOP
    assert record.read_text().splitlines() == [
        "--machine=netos",
        "restart",
        "--no-block",
        "--",
        "a.service",
    ]


def test_systemctl_failure_continues(harness: Harness, tmp_path: Path, oolog: Path) -> None:
    script, _ = fake_systemctl(
        harness, tmp_path, 5, "Failed to restart a.service: Unit a.service not found."
    )
    plugin = load(harness, service="a.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert (
        f"Failed to restart through {script}: exit status 5: "
        "Failed to restart a.service: Unit a.service not found."
    ) in oolog.read_text()
    assert harness.kmsg.lines == []


def test_no_bus_and_no_systemctl_continues(harness: Harness, oolog: Path) -> None:
    """The harness host's systemctl does not exist."""
    plugin = load(harness, service="a.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert "Failed to run " in oolog.read_text()
    assert harness.stats.get("oomd.restarts") == 0


# --- post_action_delay ------------------------------------------------------------------------


@needs_bus
def test_post_action_delay_pauses_the_ruleset_without_stalling_the_tick(
    harness: Harness, bus: FakeSystemd
) -> None:
    """Upstream sleeps post_action_delay inside the tick, then the ruleset pauses for
    its own post_action_delay: this ruleset resumes after both (5 + 10 s), while the
    tick never sleeps and other rulesets keep running."""
    h = harness
    cfg = config([action(service="a.service", post_action_delay=5)], post_action_delay="10")
    cfg["rulesets"].append(
        {
            "name": "other",
            "post_action_delay": "0",
            "detectors": [["always", {"name": "continue"}]],
            "actions": [action(service="b.service", post_action_delay=0)],
        }
    )
    h.load(cfg)
    h.tick()  # t: both restart
    h.tick(14)  # t+1 .. t+14: only b
    assert restarted(bus).count("a.service") == 1 and restarted(bus).count("b.service") == 15
    h.tick()  # t+15: a again
    assert restarted(bus).count("a.service") == 2


@needs_bus
def test_failure_does_not_pause(harness: Harness, bus: FakeSystemd) -> None:
    bus.error = ("org.freedesktop.systemd1.NoSuchUnit", "nope")
    harness.load(config([action(service="a.service", post_action_delay=5)], post_action_delay="10"))
    harness.tick(3)
    assert len(bus.calls) == 3
