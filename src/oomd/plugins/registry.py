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
    "kill_by_memory_size_or_growth": "oomd.plugins.kill_memory_growth:KillMemoryGrowth",
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


def get(name: str) -> type[Plugin] | None:
    target = BUILTIN.get(name)
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    assert isinstance(cls, type) and issubclass(cls, Plugin)
    return cls


def names() -> list[str]:
    return sorted(BUILTIN)
