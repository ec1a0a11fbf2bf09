"""kill_by_process_count: its ranking, and a dry-run kill through oomd's kill core."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from oomd_example_plugins.kill_process_count import KillByProcessCount

from oomd.plugin import NullKmsg, OomdContext, PluginEnv, PluginRet
from oomd.testing import ConfigError, build_plugin

MakeCgroup = Callable[..., Path]


def test_ranks_by_process_count_and_kills_the_first(
    cgroup_fs: Path, make_cgroup: MakeCgroup
) -> None:
    make_cgroup("workload.slice/few.service", current=900 << 20, procs=(101,))
    make_cgroup("workload.slice/many.service", current=100 << 20, procs=(201, 202, 203))
    make_cgroup("workload.slice/none.service", current=500 << 20)
    kmsg = NullKmsg()
    env = PluginEnv(cgroup_fs=str(cgroup_fs), kmsg=kmsg)
    plugin = build_plugin(KillByProcessCount, {"cgroup": "workload.slice/*", "dry": "true"}, env)
    assert isinstance(plugin, KillByProcessCount)
    ctx = OomdContext(str(cgroup_fs))
    ctx.refresh()
    ranked = plugin.rank(ctx, ctx.resolve(plugin.cgroup))
    # none.service has no process: below min_processes (1), so not a candidate.
    assert [cg.path.relative for cg in ranked] == [
        "workload.slice/many.service",
        "workload.slice/few.service",
    ]
    plugin.prerun(ctx)
    assert plugin.run(ctx) is PluginRet.STOP  # a kill (here a dry one) ends the chain
    [line] = kmsg.lines
    assert line.startswith("oomd kill: ")
    assert " workload.slice/many.service " in line
    assert line.endswith("killer:(dry)kill_by_process_count v2")


def test_min_processes_must_be_positive(cgroup_fs: Path) -> None:
    env = PluginEnv(cgroup_fs=str(cgroup_fs))
    with pytest.raises(ConfigError) as excinfo:
        build_plugin(KillByProcessCount, {"cgroup": "w/*", "min_processes": "0"}, env)
    assert 'arg "min_processes": must be positive, not 0' in excinfo.value.problems[0]
