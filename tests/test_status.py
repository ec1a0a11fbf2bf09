"""``oomd status``/``explain``: the view comes from the plugins themselves and asking
for it changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomd.commands.status import render
from oomd.engine.kill_base import KillPlugin
from oomd.engine.status import evaluate
from oomd.plugins.pressure_above import most_pressured
from tests.support.harness import Harness, always_acting, plugin, ruleset
from tests.support.tree import FakeTree

CONFIG = {
    "rulesets": [
        ruleset(
            "protect",
            [
                (
                    "pressure",
                    [
                        plugin(
                            "pressure_above",
                            cgroup="work.slice/*",
                            resource="memory",
                            threshold="20",
                            duration="3",
                        ),
                        plugin(
                            "pressure_rising_beyond",
                            cgroup="work.slice/*",
                            resource="memory",
                            threshold="20",
                            duration="2",
                        ),
                    ],
                ),
                (
                    "usage",
                    [plugin("memory_above", cgroup="work.slice/*", threshold="1G", duration="5")],
                ),
            ],
            [plugin("kill_by_memory_size_or_growth", cgroup="work.slice/*", post_action_delay="0")],
        )
    ]
}


def _populate(tree: FakeTree) -> None:
    tree.cgroup("work.slice")
    for i, (current, avg10) in enumerate([(100 << 20, 30.0), (700 << 20, 90.0), (50 << 20, 5.0)]):
        tree.cgroup(
            f"work.slice/cg{i}",
            current=current,
            pressure=(avg10, avg10, avg10),
            stat={"anon": current},
            populated=True,
        )


def _state(obj: Any, seen: set[int] | None = None) -> Any:
    """Everything an object holds (attributes and slots, recursively through the
    engine's own objects; contexts and the environment excluded), comparable."""
    seen = set() if seen is None else seen
    if isinstance(obj, int | float | str | bool | type(None)):
        return obj
    if id(obj) in seen:
        return "<seen>"
    seen.add(id(obj))
    if isinstance(obj, list | tuple):
        return [_state(x, seen) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _state(v, seen) for k, v in obj.items()}
    names = list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        names += [n for n in getattr(cls, "__slots__", ()) if hasattr(obj, n)]
    return {
        "type": type(obj).__name__,
        **{n: _state(getattr(obj, n), seen) for n in names if n not in ("env", "factory", "ctx")},
    }


def test_status_readings_and_candidates_are_what_the_plugins_compute(harness: Harness) -> None:
    _populate(harness.tree)
    engine = harness.load(CONFIG, dry_run=True)
    harness.tick(2)
    doc = evaluate(engine, harness.ctx)
    rs = doc["rulesets"][0]
    pressure_view = rs["detector_groups"][0]["detectors"][0]
    detector = engine.rulesets[0].detector_groups[0].detectors[0]
    expected, _ = most_pressured(harness.ctx.resolve(detector.cgroup), "memory")  # type: ignore[attr-defined]
    assert pressure_view["reading"] == expected.avg10 == 90.0
    assert pressure_view["cgroup"] == "work.slice/cg1"
    assert (pressure_view["threshold"], pressure_view["duration_s"]) == (20, 3)
    # Over the threshold on both ticks, one second apart: held for 1 s, as its timer.
    assert pressure_view["held_s"] == 1 == int(harness.clock() - detector.timer.since)  # type: ignore[attr-defined]
    usage_view = rs["detector_groups"][1]["detectors"][0]
    assert (usage_view["reading"], usage_view["over"]) == (700 << 20, False)
    kill = engine.rulesets[0].actions[0]
    assert isinstance(kill, KillPlugin)
    action = rs["actions"][0]
    ranked = kill.rank(harness.ctx, kill.candidates(harness.ctx))
    assert [c["cgroup"] for c in action["top"]] == [c.path.relative for c in ranked]
    assert action["top"][0]["usage"] == 700 << 20
    assert action["victim"]["cgroup"] == "work.slice/cg1"
    assert action["victim"]["reason"] == kill.pick_reason(harness.ctx, ranked[0], ranked)
    assert action["considered"] == 3


def test_status_changes_no_state(tree: FakeTree, proc: Any) -> None:
    """Two identical engines tick side by side; one is asked for status before and
    after every tick. Their states, kills and logs stay identical."""
    _populate(tree)
    asked, control = Harness(tree, proc), Harness(tree, proc)
    asked.load(CONFIG, dry_run=True)
    control.load(CONFIG, dry_run=True)
    assert asked.engine is not None and control.engine is not None
    for step in range(8):
        if step == 4:  # pressure falls: timers reset, the kill pauses
            tree.set_pressure("work.slice/cg1", 1.0, 1.0, 1.0)
        asked.tick()
        control.tick()
        before = _state(asked.engine)
        evaluate(asked.engine, asked.ctx)
        evaluate(asked.engine, asked.ctx, top=10)
        after = _state(asked.engine)
        assert after == before, f"status changed the engine's state at tick {step}"
        assert _state(asked.engine) == _state(control.engine)
    assert asked.kills == control.kills
    assert asked.kills, "the scenario must kill (dry) for the comparison to mean anything"
    assert tree.get_xattr("work.slice/cg1", "trusted.oomd_kill_uuid") is None


def test_state_snapshot_sees_a_detector_timer_change(harness: Harness) -> None:
    """The check above would fail if status touched a detector's timer."""
    _populate(harness.tree)
    engine = harness.load(CONFIG, dry_run=True)
    harness.tick(2)
    before = _state(engine)
    timer = engine.rulesets[0].detector_groups[0].detectors[0].timer  # type: ignore[attr-defined]
    saved = timer.since
    timer.update(False, harness.clock(), 3)
    assert _state(engine) != before
    timer.since = saved
    assert _state(engine) == before


OTHER_PLUGINS = {
    "rulesets": [
        ruleset(
            "misc",
            [
                (
                    "dying",
                    [plugin("nr_dying_descendants", cgroup="work.slice/*", count="3", lte="false")],
                ),
                (
                    "trigger",
                    [
                        plugin(
                            "pressure_trigger",
                            cgroup="work.slice/*",
                            resource="memory",
                            stall_ms="10",
                            window_ms="1000",
                        )
                    ],
                ),
                ("reclaim", [plugin("memory_reclaim", cgroup="work.slice/*", duration="2")]),
                ("always", [plugin("continue")]),
            ],
            [
                plugin("dump_cgroup_overview", cgroup="work.slice/*", always="true"),
                plugin("senpai", cgroup="work.slice/*", interval="1"),
            ],
        ),
        ruleset("panic", [("never", [plugin("stop")])], [plugin("kernel_panic")]),
        ruleset(
            "restart",
            [("always", [plugin("continue")])],
            [plugin("systemd_restart", service="x.service", dry="true", post_action_delay="0")],
        ),
    ]
}


def _populate_other(tree: FakeTree, step: int) -> None:
    if step == 0:
        tree.cgroup("work.slice")
    for i in range(3):
        tree.cgroup(
            f"work.slice/cg{i}",
            current=(100 + 10 * step) << 20,
            high=str(200 << 20) if step == 0 else None,
            pressure=(5.0 * i, 5.0 * i, 5.0 * i),
            stat={
                "anon": 50 << 20,
                "active_file": 10 << 20,
                "inactive_file": 10 << 20,
                "pgscan": 1000 * step * i,
            },
            nr_dying=step * i,
            populated=True,
        )


def test_explain_of_the_other_plugins_changes_no_state(tree: FakeTree, proc: Any) -> None:
    """As above, for every other plugin with an ``explain``: what they say comes from
    the state their runs left, and saying it changes none of it. (No control engine
    on the same tree: senpai writes memory.high, two would disturb each other.)"""
    _populate_other(tree, 0)
    asked = Harness(tree, proc)
    asked.load(OTHER_PLUGINS, dry_run=True)
    assert asked.engine is not None
    views: dict[str, dict[str, Any]] = {}
    for step in range(6):
        _populate_other(tree, step)
        asked.tick()
        before = _state(asked.engine)
        high = tree.path("work.slice/cg0").joinpath("memory.high").read_text()
        doc = evaluate(asked.engine, asked.ctx)
        evaluate(asked.engine, asked.ctx, top=10)
        assert _state(asked.engine) == before, f"explain changed the engine's state at {step}"
        assert tree.path("work.slice/cg0").joinpath("memory.high").read_text() == high
        for rs in doc["rulesets"]:
            for group in rs["detector_groups"]:
                for view in group["detectors"]:
                    views[view["name"]] = view
            for view in rs["actions"]:
                views[view["name"]] = view
    for name in (
        "nr_dying_descendants",
        "pressure_trigger",
        "memory_reclaim",
        "continue",
        "stop",
        "dump_cgroup_overview",
        "senpai",
        "kernel_panic",
        "systemd_restart",
    ):
        assert "error" not in views[name], views[name]
        assert len(views[name]) > 1, f"{name} explains nothing"
    # The last tick: cg1 is the first with more than 3 dying descendants (5), pgscan
    # grew, every cgroup is logged, senpai tracks all three.
    dying = views["nr_dying_descendants"]
    assert (dying["reading"], dying["over"], dying["cgroup"]) == (5, True, "work.slice/cg1")
    assert views["memory_reclaim"]["over"] is True
    assert views["memory_reclaim"]["reading"] == 5000 * 1 + 5000 * 2
    assert views["dump_cgroup_overview"]["would_log"] == 3
    senpai = views["senpai"]
    assert senpai["tracked_count"] == 3
    assert {t["cgroup"] for t in senpai["tracked"]} == {f"work.slice/cg{i}" for i in range(3)}


def test_status_names_the_protected_cgroups_and_what_they_match_now(harness: Harness) -> None:
    """Issue 17: `-c` said which cgroups are protected; status and explain now do too
    (the patterns as written, the cgroups matching now), in JSON and in the text."""
    _populate(harness.tree)
    config = {
        **CONFIG,
        "protected_cgroups": ["work.slice/cg1", "work.slice/cg0", "system.slice/db*"],
    }
    engine = harness.load(config, dry_run=True)
    harness.tick()
    doc = evaluate(engine, harness.ctx)
    assert doc["protected_cgroups"] == {
        "patterns": ["work.slice/cg1", "work.slice/cg0", "system.slice/db*"],
        "matching": ["work.slice/cg0", "work.slice/cg1"],
    }
    # The protected cgroups are what the kill path skips: the victim is the third.
    assert doc["rulesets"][0]["actions"][0]["victim"]["cgroup"] == "work.slice/cg2"
    text = render({**doc, "host": {}})
    assert (
        "protected: work.slice/cg1, work.slice/cg0, system.slice/db* (never killed, "
        "descendants included; matching now: work.slice/cg0, work.slice/cg1)"
    ) in text.splitlines()
    harness.tree.cgroup("system.slice/db1")
    assert evaluate(engine, harness.ctx)["protected_cgroups"]["matching"] == [
        "system.slice/db1",
        "work.slice/cg0",
        "work.slice/cg1",
    ]


def test_status_without_protected_cgroups_has_an_empty_list_and_no_line(
    harness: Harness,
) -> None:
    _populate(harness.tree)
    engine = harness.load(CONFIG, dry_run=True)
    doc = evaluate(engine, harness.ctx)
    assert doc["protected_cgroups"] == {"patterns": [], "matching": []}
    assert "protected" not in render({**doc, "host": {}})


def test_a_status_socket_path_too_long_is_a_clear_error(harness: Harness, tmp_path: Path) -> None:
    """Both sockets bind through stats.listen_unix: a runtime dir where the stats socket
    fits but ``oomd-status.socket`` (one byte longer) does not says why, instead of
    Python's ``None`` strerror."""
    from oomd.observe import Observer, StatusClientError, StatusServer, request_status
    from oomd.stats import Stats

    harness.load(always_acting(plugin("stop")))
    assert harness.engine is not None
    runtime = tmp_path / ("d" * (107 - len(str(tmp_path)) - len("/oomd-stats.socket") - 1))
    path = str(runtime / "oomd-status.socket")
    assert len(str(runtime / "oomd-stats.socket")) == 107 and len(path) == 108
    observer = Observer(harness.engine, harness.ctx, Stats(), 1)
    try:
        with pytest.raises(OSError) as info:
            StatusServer(observer, path).start()
    finally:
        observer.close()  # it subscribed to kill events
    assert info.value.strerror == "path longer than 107 bytes, too long for a unix socket"
    with pytest.raises(StatusClientError, match="path longer than 107 bytes"):
        request_status(path)
