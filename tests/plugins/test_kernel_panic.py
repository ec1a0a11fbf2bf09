"""kernel_panic (upstream plugins/KernelPanic.cpp, reference 5.11; upstream has no
test and no meson build of it). Every test here writes to a scratch file: the harness's
host has its /proc in the test's tmp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from oomd.engine.plugin import PluginRet
from oomd.host import Host
from oomd.plugins.kernel_panic import KernelPanic, trigger_crash
from tests.support.harness import Harness, always_acting, plugin


def action(h: Harness, dry_run: bool = False) -> KernelPanic:
    h.load(
        always_acting(plugin("kernel_panic")),
        dry_run=dry_run,
    )
    assert h.engine is not None
    found = h.engine.rulesets[0].actions[0]
    assert isinstance(found, KernelPanic)
    return found


def test_the_target_is_the_hosts_sysrq_trigger(harness: Harness) -> None:
    """The harness's host is a scratch one; the daemon's is the real /proc."""
    assert action(harness).target() == str(harness.proc.root / "sysrq-trigger")
    assert Host().sysrq_trigger == "/proc/sysrq-trigger"


def test_writes_c_and_stops(harness: Harness) -> None:
    target = Path(harness.env.host.sysrq_trigger)
    target.write_text("")
    assert harness.run(action(harness)) is PluginRet.STOP
    assert target.read_text() == "c"


def test_unopenable_trigger_logs_and_continues(harness: Harness, oolog: Path) -> None:
    """Upstream: `Failed to open /proc/sysrq-trigger`, CONTINUE (the file is never
    created: it must already exist)."""
    target = Path(harness.env.host.sysrq_trigger)
    assert not target.exists()
    assert harness.run(action(harness)) is PluginRet.CONTINUE
    assert not target.exists()
    assert f"Failed to open {target}" in oolog.read_text()


def test_failed_write_logs_and_continues() -> None:
    """Upstream: `Failed to trigger kernel panic` when the write fails."""
    assert trigger_crash("/dev/full") == "Failed to trigger kernel panic"


def test_dry_run_writes_nothing(harness: Harness, oolog: Path) -> None:
    """Deliberate difference: --dry-run never panics (upstream has no dry mode)."""
    target = Path(harness.env.host.sysrq_trigger)
    target.write_text("")
    assert harness.run(action(harness, dry_run=True)) is PluginRet.STOP
    assert target.read_text() == ""
    assert "dry run: not writing 'c'" in oolog.read_text()


def test_runs_as_an_action_in_the_engine(harness: Harness) -> None:
    target = Path(harness.env.host.sysrq_trigger)
    target.write_text("")
    action(harness)
    harness.tick()
    assert target.read_text() == "c"


@pytest.mark.parametrize("args", [{"dry": "true"}, {"cgroup": "/"}])
def test_takes_no_args(harness: Harness, args: dict[str, str]) -> None:
    problems = harness.problems("kernel_panic", **args)
    assert len(problems) == 1 and "Unknown arg" in problems[0], problems


def test_a_host_not_allowed_to_panic_writes_nothing(harness: Harness, oolog: Path) -> None:
    """A PluginEnv built without the daemon's host (a plugin author's test) must not be
    able to crash the machine: only a host built with may_panic writes."""
    plugin = action(harness)
    target = Path(harness.env.host.sysrq_trigger)
    target.write_text("")
    plugin.env.host.may_panic = False
    assert harness.run(plugin) is PluginRet.CONTINUE
    assert target.read_text() == ""
    assert "this plugin's host may not panic the kernel" in oolog.read_text()
    assert not Host().may_panic
