"""near_memory_limit, built exactly as a config would build it (oomd.plugin.build_plugin)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from oomd_example_plugins.near_limit import NearMemoryLimit

from oomd.plugin import OomdContext, Plugin, PluginEnv, PluginRet
from oomd.testing import ConfigError, build_plugin

MakeCgroup = Callable[..., Path]

GIB = 1 << 30


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tick(plugin: Plugin, ctx: OomdContext) -> PluginRet:
    ctx.refresh()
    plugin.prerun(ctx)
    return plugin.run(ctx)


def test_fires_when_a_cgroup_is_near_its_limit(
    env: PluginEnv, cgroup_fs: Path, make_cgroup: MakeCgroup
) -> None:
    make_cgroup("workload.slice/a.service", current=GIB // 2, max=GIB)
    make_cgroup("workload.slice/b.service", current=GIB * 95 // 100, max=GIB)
    plugin = build_plugin(NearMemoryLimit, {"cgroup": "workload.slice/*", "percent": "90"}, env)
    assert isinstance(plugin, NearMemoryLimit)
    ctx = OomdContext(str(cgroup_fs))
    # A detector's run: CONTINUE means "firing", STOP "not firing".
    assert tick(plugin, ctx) is PluginRet.CONTINUE
    make_cgroup("workload.slice/b.service", current=GIB // 2, max=GIB)
    assert tick(plugin, ctx) is PluginRet.STOP


def test_unlimited_cgroups_never_fire(
    env: PluginEnv, cgroup_fs: Path, make_cgroup: MakeCgroup
) -> None:
    make_cgroup("workload.slice", current=64 * GIB)
    plugin = build_plugin(NearMemoryLimit, {"cgroup": "workload.slice", "percent": "1"}, env)
    assert tick(plugin, OomdContext(str(cgroup_fs))) is PluginRet.STOP


def test_duration_is_how_long_the_condition_must_hold(
    env: PluginEnv, cgroup_fs: Path, make_cgroup: MakeCgroup
) -> None:
    make_cgroup("workload.slice", current=GIB, max=GIB)
    plugin = build_plugin(NearMemoryLimit, {"cgroup": "workload.slice", "duration": "10"}, env)
    assert isinstance(plugin, NearMemoryLimit)
    clock = Clock()
    ctx = OomdContext(str(cgroup_fs), clock=clock)
    results = []
    for _ in range(3):
        results.append(tick(plugin, ctx))
        clock.now += 5
    assert results == [PluginRet.STOP, PluginRet.STOP, PluginRet.CONTINUE]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"cgroup": "w", "percent": "150"}, 'arg "percent": must be between 1 and 100, not 150'),
        ({"cgroup": "w", "percent": "lots"}, "arg \"percent\": 'lots' is not an integer"),
        ({"cgroup": "w", "duration": "-1"}, 'arg "duration": must be non-negative, not -1'),
        ({"percent": "50"}, 'arg "cgroup": Required arg "cgroup" missing'),
        ({"cgroup": "w", "treshold": "5"}, 'Unknown arg "treshold"'),
    ],
)
def test_bad_args_are_config_errors_naming_plugin_and_arg(
    env: PluginEnv, args: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_plugin(NearMemoryLimit, args, env)
    [problem] = excinfo.value.problems
    assert 'plugin "near_memory_limit"' in problem
    assert message in problem
