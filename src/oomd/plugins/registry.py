"""Plugin names -> classes. Modules are imported only when a config names the plugin,
so the daemon does not load code its config does not use."""

from __future__ import annotations

import importlib

from oomd.engine.plugin import Plugin

#: Every built-in plugin that works. A plugin is listed here only once it is complete.
BUILTIN: dict[str, str] = {
    "continue": "oomd.plugins.basic:Continue",
    "stop": "oomd.plugins.basic:Stop",
    "pressure_above": "oomd.plugins.pressure_above:PressureAbove",
    "pressure_rising_beyond": "oomd.plugins.pressure_rising_beyond:PressureRisingBeyond",
    "memory_above": "oomd.plugins.memory_above:MemoryAbove",
    "memory_reclaim": "oomd.plugins.memory_reclaim:MemoryReclaim",
    "swap_free": "oomd.plugins.swap_free:SwapFree",
    "exists": "oomd.plugins.exists:Exists",
    "nr_dying_descendants": "oomd.plugins.nr_dying_descendants:NrDyingDescendants",
    "dump_cgroup_overview": "oomd.plugins.dump_cgroup_overview:DumpCgroupOverview",
    "kernel_panic": "oomd.plugins.kernel_panic:KernelPanic",
    "kill_by_memory_size_or_growth": "oomd.plugins.kill_memory_growth:KillMemoryGrowth",
    "kill_by_swap_usage": "oomd.plugins.kill_swap_usage:KillSwapUsage",
    "kill_by_pressure": "oomd.plugins.kill_pressure:KillPressure",
    "kill_by_pg_scan": "oomd.plugins.kill_pg_scan:KillPgScan",
    "kill_by_io_cost": "oomd.plugins.kill_io_cost:KillIOCost",
    "senpai": "oomd.plugins.senpai:Senpai",
    "systemd_restart": "oomd.plugins.systemd_restart:SystemdRestart",
}


#: Upstream oomd's plugin names (main branch), to tell "not implemented yet" apart from
#: a typo in error messages.
UPSTREAM: frozenset[str] = frozenset(
    {
        "continue",
        "stop",
        "exists",
        "pressure_above",
        "pressure_rising_beyond",
        "memory_above",
        "memory_reclaim",
        "swap_free",
        "nr_dying_descendants",
        "dump_cgroup_overview",
        "senpai",
        "kill_by_memory_size_or_growth",
        "kill_by_swap_usage",
        "kill_by_pressure",
        "kill_by_io_cost",
        "kill_by_pg_scan",
        "systemd_restart",
        "kernel_panic",
    }
)


def _load(target: str | None) -> type[Plugin] | None:
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    assert isinstance(cls, type) and issubclass(cls, Plugin)
    return cls


def get(name: str) -> type[Plugin] | None:
    return _load(BUILTIN.get(name))


def names() -> list[str]:
    return sorted(BUILTIN)


#: Prekill hooks: a separate namespace, as upstream (hooks are not plugins).
HOOKS: dict[str, str] = {
    "dummy_prekill_hook": "oomd.plugins.prekill_hooks:DummyPrekillHook",
    "exec_prekill_hook": "oomd.plugins.prekill_hooks:ExecPrekillHook",
}


def get_hook(name: str) -> type[Plugin] | None:
    return _load(HOOKS.get(name))
