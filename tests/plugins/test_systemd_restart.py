"""systemd_restart (upstream plugins/systemd/SystemdRestart-inl.h, BaseSystemdPlugin.cpp;
SystemdPluginsTest: RestartService, RestartServiceDry, RestartServiceWithMachineType;
reference 5.18).

Every test talks to a stand-in: a fake bus on a unix socket in the test's tmp dir
(tests/support/fake_dbus.py), a real private dbus-daemon where one is installed, or a
fake systemctl script. The session-wide fixture in conftest.py points the plugin's
defaults at scratch paths, so nothing here can reach the host's systemd.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from oomd.config.errors import ConfigError
from oomd.engine.plugin import PluginRet
from oomd.plugins import systemd_restart
from oomd.plugins.systemd_restart import SystemdRestart
from tests.support.fake_dbus import DBUS_DAEMON, JOB, FakeBus, PrivateDbusDaemon, serve_fake_systemd
from tests.support.harness import Harness


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
def bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with FakeBus(tmp_path / "system_bus_socket") as fake:
        monkeypatch.setattr(systemd_restart, "SYSTEM_BUS_ADDRESS", fake.address)
        yield fake


def fake_systemctl(tmp_path: Path, exit_status: int = 0, stderr: str = "") -> tuple[Path, Path]:
    """A systemctl that records its argv (one per line) and exits as told."""
    script = tmp_path / "systemctl"
    record = tmp_path / "systemctl.argv"
    script.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do printf "%s\\n" "$a"; done > {record}\n'
        + (f"printf '%s\\n' '{stderr}' >&2\n" if stderr else "")
        + f"exit {exit_status}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, record


# --- upstream's SystemdPluginsTest ---------------------------------------------------------


def test_restart_service(harness: Harness, bus: FakeBus, oolog: Path) -> None:
    """RestartService: RestartUnit(service, "replace") on systemd's manager, STOP."""
    plugin = load(harness, service="some.service", post_action_delay=0, dry="false")
    assert run(harness, plugin) is PluginRet.STOP
    [call] = bus.calls
    assert (call.destination, call.path, call.interface, call.member) == (
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "RestartUnit",
    )
    assert (call.signature, call.body) == ("ss", ("some.service", "replace"))
    # A well-behaved bus client: AUTH EXTERNAL with our uid, then Hello first.
    assert bus.auth_lines == [b"\0AUTH EXTERNAL " + str(os.geteuid()).encode().hex().encode()]
    assert [m.member for m in bus.messages] == ["Hello", "RestartUnit"]
    log = oolog.read_text()
    assert 'Restarting systemd service "some.service"' in log
    assert f"Queued service job as {JOB}" in log
    assert harness.kmsg.lines == ["oomd kill: restarted systemd service=some.service"]
    assert harness.stats.get("oomd.restarts") == 1


def test_restart_service_dry(harness: Harness, bus: FakeBus, oolog: Path) -> None:
    """RestartServiceDry: no call at all, still STOP, counted, kmsg says (dry)."""
    plugin = load(harness, service="some.service", post_action_delay=0, dry="true")
    assert run(harness, plugin) is PluginRet.STOP
    assert bus.connections == 0
    assert "DRY-RUN: restarting service some.service" in oolog.read_text()
    assert harness.kmsg.lines == ["oomd kill: restarted systemd service=some.service (dry)"]
    assert harness.stats.get("oomd.restarts") == 1


def test_restart_service_with_machine_type(
    harness: Harness, bus: FakeBus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oolog: Path
) -> None:
    """RestartServiceWithMachineType: the restart goes to that machine's system bus
    (its leader's root, as sd_bus_open_system_machine), not the host's."""
    machines = tmp_path / "machines"
    machines.mkdir()
    (machines / "netos").write_text("NAME=netos\nCLASS=container\nLEADER=4242\n")
    monkeypatch.setattr(systemd_restart, "MACHINES_DIR", str(machines))
    monkeypatch.setattr(systemd_restart, "MACHINE_BUS_PATH", str(tmp_path / "m-{leader}.sock"))
    with FakeBus(tmp_path / "m-4242.sock") as machine_bus:
        plugin = load(
            harness,
            service="wedge_agent.service",
            post_action_delay=0,
            dry="false",
            machine_type="netos",
        )
        assert run(harness, plugin) is PluginRet.STOP
        assert [c.body for c in machine_bus.calls] == [("wedge_agent.service", "replace")]
    assert bus.connections == 0
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


def test_daemon_dry_run_makes_it_dry(harness: Harness, bus: FakeBus) -> None:
    plugin = load(harness, dry_run=True, service="some.service")
    assert run(harness, plugin) is PluginRet.STOP
    assert bus.connections == 0
    assert harness.kmsg.lines == ["oomd kill: restarted systemd service=some.service (dry)"]


# --- failures -----------------------------------------------------------------------------


def test_error_reply_continues(harness: Harness, bus: FakeBus, oolog: Path) -> None:
    bus.error = ("org.freedesktop.systemd1.NoSuchUnit", "Unit nope.service not found.")
    plugin = load(harness, service="nope.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert "Failed to issue method call: Unit nope.service not found." in oolog.read_text()
    assert harness.kmsg.lines == []
    assert harness.stats.get("oomd.restarts") == 0


def test_reply_without_a_job_path_continues(harness: Harness, bus: FakeBus, oolog: Path) -> None:
    bus.reply_signature = "u"
    plugin = load(harness, service="some.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert "Failed to parse response message: No such device or address" in oolog.read_text()


def test_rejected_authentication_continues_without_fallback(
    harness: Harness, bus: FakeBus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oolog: Path
) -> None:
    script, record = fake_systemctl(tmp_path)
    monkeypatch.setattr(systemd_restart, "SYSTEMCTL", str(script))
    bus.reject_auth = True
    plugin = load(harness, service="some.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert "Failed to connect to system bus: authentication rejected" in oolog.read_text()
    assert not record.exists()


def test_silent_bus_times_out_and_continues(
    harness: Harness, bus: FakeBus, monkeypatch: pytest.MonkeyPatch, oolog: Path
) -> None:
    monkeypatch.setattr(systemd_restart, "TIMEOUT", 1.0)
    bus.silent = True
    plugin = load(harness, service="some.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert "Failed to issue method call: Connection timed out" in oolog.read_text()


def test_big_endian_replies_are_understood(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeBus(tmp_path / "be.sock", endian="B") as fake:
        monkeypatch.setattr(systemd_restart, "SYSTEM_BUS_ADDRESS", fake.address)
        plugin = load(harness, service="some.service")
        assert run(harness, plugin) is PluginRet.STOP


def test_dbus_system_bus_address_is_honoured(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As sd-bus: ``DBUS_SYSTEM_BUS_ADDRESS`` names the system bus (first reachable
    unix entry of the list)."""
    with FakeBus(tmp_path / "env.sock") as fake:
        monkeypatch.setattr(systemd_restart, "SYSTEM_BUS_ADDRESS", None)
        monkeypatch.setenv(
            "DBUS_SYSTEM_BUS_ADDRESS",
            f"tcp:host=localhost;unix:path={tmp_path}/gone;{fake.address}",
        )
        plugin = load(harness, service="some.service")
        assert run(harness, plugin) is PluginRet.STOP
        assert len(fake.calls) == 1


@pytest.mark.parametrize(
    ("machine", "content", "error"),
    [
        ("unknown", None, "No such device or address"),
        ("../etc", None, "Invalid argument"),
        ("vm1", "CLASS=vm\nLEADER=1\n", "Input/output error"),
        ("broken", "CLASS=container\n", "Input/output error"),
    ],
)
def test_machine_that_cannot_be_reached_continues(
    harness: Harness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    oolog: Path,
    machine: str,
    content: str | None,
    error: str,
) -> None:
    machines = tmp_path / "machines"
    machines.mkdir()
    if content is not None:
        (machines / machine).write_text(content)
    monkeypatch.setattr(systemd_restart, "MACHINES_DIR", str(machines))
    script, record = fake_systemctl(tmp_path)
    monkeypatch.setattr(systemd_restart, "SYSTEMCTL", str(script))
    plugin = load(harness, service="a.service", machine_type=machine)
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert f"Failed to connect to system bus: {error}" in oolog.read_text()
    assert not record.exists()


# --- without a bus: systemctl -------------------------------------------------------------


def test_no_bus_falls_back_to_systemctl(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oolog: Path
) -> None:
    script, record = fake_systemctl(tmp_path)
    monkeypatch.setattr(systemd_restart, "SYSTEMCTL", str(script))
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


def test_bus_socket_without_a_listener_falls_back_to_systemctl(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(dead))
    sock.close()  # the file stays, nobody listens: ECONNREFUSED
    monkeypatch.setattr(systemd_restart, "SYSTEM_BUS_ADDRESS", f"unix:path={dead}")
    script, record = fake_systemctl(tmp_path)
    monkeypatch.setattr(systemd_restart, "SYSTEMCTL", str(script))
    plugin = load(harness, service="a.service")
    assert run(harness, plugin) is PluginRet.STOP
    assert record.exists()


def test_no_bus_on_a_machine_falls_back_to_systemctl_machine(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    machines = tmp_path / "machines"
    machines.mkdir()
    (machines / "netos").write_text("CLASS=container\nLEADER=4242\n")
    monkeypatch.setattr(systemd_restart, "MACHINES_DIR", str(machines))
    script, record = fake_systemctl(tmp_path)
    monkeypatch.setattr(systemd_restart, "SYSTEMCTL", str(script))
    plugin = load(harness, service="a.service", machine_type="netos")
    assert run(harness, plugin) is PluginRet.STOP
    assert record.read_text().splitlines() == [
        "--machine=netos",
        "restart",
        "--no-block",
        "--",
        "a.service",
    ]


def test_systemctl_failure_continues(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oolog: Path
) -> None:
    script, _ = fake_systemctl(
        tmp_path, 5, "Failed to restart a.service: Unit a.service not found."
    )
    monkeypatch.setattr(systemd_restart, "SYSTEMCTL", str(script))
    plugin = load(harness, service="a.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert (
        f"Failed to restart through {script}: exit status 5: "
        "Failed to restart a.service: Unit a.service not found."
    ) in oolog.read_text()
    assert harness.kmsg.lines == []


def test_no_bus_and_no_systemctl_continues(harness: Harness, oolog: Path) -> None:
    """The session fixture's scratch systemctl does not exist."""
    plugin = load(harness, service="a.service")
    assert run(harness, plugin) is PluginRet.CONTINUE
    assert "Failed to run " in oolog.read_text()
    assert harness.stats.get("oomd.restarts") == 0


# --- post_action_delay ------------------------------------------------------------------------


def test_post_action_delay_pauses_the_ruleset_without_stalling_the_tick(
    harness: Harness, bus: FakeBus
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
    restarted = [c.body[0] for c in bus.calls]
    assert restarted.count("a.service") == 1 and restarted.count("b.service") == 15
    h.tick()  # t+15: a again
    assert [c.body[0] for c in bus.calls].count("a.service") == 2


def test_failure_does_not_pause(harness: Harness, bus: FakeBus) -> None:
    bus.error = ("org.freedesktop.systemd1.NoSuchUnit", "nope")
    harness.load(config([action(service="a.service", post_action_delay=5)], post_action_delay="10"))
    harness.tick(3)
    assert len(bus.calls) == 3


# --- a real dbus-daemon -------------------------------------------------------------------


@pytest.mark.skipif(DBUS_DAEMON is None, reason="dbus-daemon is not installed")
def test_restart_through_a_real_dbus_daemon(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oolog: Path
) -> None:
    """The daemon validates every message we send; a fake systemd owns the name."""
    daemon = PrivateDbusDaemon(tmp_path)
    try:
        monkeypatch.setattr(systemd_restart, "SYSTEM_BUS_ADDRESS", daemon.address)
        with serve_fake_systemd(daemon.address, "/org/freedesktop/systemd1/job/77") as calls:
            plugin = load(harness, service="some.service")
            assert run(harness, plugin) is PluginRet.STOP
            assert [c.body for c in calls] == [("some.service", "replace")]
        assert "Queued service job as /org/freedesktop/systemd1/job/77" in oolog.read_text()
        # Nobody owns the name any more: the bus's error, and CONTINUE.
        assert run(harness, plugin) is PluginRet.CONTINUE
        assert (
            "Failed to issue method call: The name org.freedesktop.systemd1 was not provided"
            in (oolog.read_text())
        )
    finally:
        daemon.stop()
