"""Issue 13: config mistakes named with a precise message and exit status (``oomd -c``),
the armed/DISARMED summary, drop-in checks, and the built-in policy fitted to the host.

Each case is a real config file checked by ``oomd -c`` against a fake cgroup tree
(``-f``), so the armed analysis sees exactly the cgroups the test made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from oomd import daemon
from oomd.cli import parse_args
from oomd.config import armed
from oomd.config.compiler import compile_config
from oomd.config.default_policy import default_policy
from oomd.config.host_policy import HostFacts, adapt_policy
from oomd.engine.plugin import PluginEnv
from tests.support.tree import FakeTree

DETECT: dict[str, Any] = {
    "name": "pressure_above",
    "args": {"cgroup": "workload.slice", "resource": "memory", "threshold": "50", "duration": "5"},
}
KILL: dict[str, Any] = {
    "name": "kill_by_pressure",
    "args": {"cgroup": "workload.slice/*", "resource": "memory"},
}


def ruleset(**extra: Any) -> dict[str, Any]:
    rs: dict[str, Any] = {"name": "r", "detectors": [["g", DETECT]], "actions": [KILL]}
    rs.update(extra)
    return rs


@pytest.fixture
def fs(tree: FakeTree) -> FakeTree:
    tree.cgroup("workload.slice")
    return tree


def check(
    tmp_path: Path, fs: FakeTree, config: Any, capfd: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, list[str], list[str]]:
    """``oomd -c CONFIG -f FS EXTRA...``: (exit status, stdout lines, stderr lines)."""
    path = tmp_path / "oomd.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    code = daemon.check_config(parse_args(["-c", str(path), "-f", fs.fs, *extra]))
    out, err = capfd.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_a_correct_config_is_valid_and_armed(
    tmp_path: Path, fs: FakeTree, capfd: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(tmp_path, fs, {"rulesets": [ruleset()]}, capfd)
    assert (code, err) == (0, [])
    assert out[-2:] == [
        'ruleset "r": armed, watching pressure_above(workload.slice); '
        "may kill workload.slice/* (kill_by_pressure)",
        "Config is valid",
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, 'the config has no rulesets: oomd will do nothing (is the key spelled "rulesets"?)'),
        (
            {"rulesets": []},
            'the config has no rulesets: oomd will do nothing (is the key spelled "rulesets"?)',
        ),
    ],
    ids=["empty object", "empty list"],
)
def test_zero_rulesets_is_an_error(
    tmp_path: Path, fs: FakeTree, capfd: pytest.CaptureFixture[str], config: Any, message: str
) -> None:
    code, _, err = check(tmp_path, fs, config, capfd)
    assert (code, err) == (1, [f"Error: {message}", "Config is not valid"])


def test_misspelled_rulesets_key_is_named_and_an_error(
    tmp_path: Path, fs: FakeTree, capfd: pytest.CaptureFixture[str]
) -> None:
    code, _, err = check(tmp_path, fs, {"ruleset": [ruleset()]}, capfd)
    source = tmp_path / "oomd.json"
    assert (code, err) == (
        1,
        [
            f'Warning: {source}: top level: unknown key "ruleset" is ignored (did you mean "rulesets"?)',
            'Error: the config has no rulesets: oomd will do nothing (is the key spelled "rulesets"?)',
            "Config is not valid",
        ],
    )


@pytest.mark.parametrize(
    ("config", "where", "key", "suggestion"),
    [
        (
            {"rulesets": [ruleset(post_action_dealy="20")]},
            'ruleset "r"',
            "post_action_dealy",
            "post_action_delay",
        ),
        (
            {"rulesets": [ruleset(silence_log="engine")]},
            'ruleset "r"',
            "silence_log",
            "silence-logs",
        ),
        (
            {"rulesets": [ruleset(**{"drop-in": {"action": True}})]},
            'ruleset "r": "drop-in"',
            "action",
            "actions",
        ),
        (
            {"rulesets": [ruleset(actions=[{**KILL, "arg": {"dry": "true"}}])]},
            'ruleset "r": action #1: plugin "kill_by_pressure"',
            "arg",
            "args",
        ),
        (
            {"rulesets": [ruleset(detectors=[["g", {**DETECT, "nmae": "x"}]])]},
            'ruleset "r": detector group "g": detector #1: plugin "pressure_above"',
            "nmae",
            "name",
        ),
        (
            {"rulesets": [ruleset()], "prekill_hook": []},
            "top level",
            "prekill_hook",
            "prekill_hooks",
        ),
    ],
    ids=["ruleset", "ruleset dash", "drop-in", "action", "detector", "top level"],
)
def test_unknown_keys_warn_with_the_closest_key_and_fail_only_with_strict(
    tmp_path: Path,
    fs: FakeTree,
    capfd: pytest.CaptureFixture[str],
    config: Any,
    where: str,
    key: str,
    suggestion: str,
) -> None:
    """Upstream ignores unknown keys, so an upstream-valid config still loads (exit 0);
    ``--strict`` makes the warning fail the check."""
    warning = (
        f'Warning: {tmp_path / "oomd.json"}: {where}: unknown key "{key}" is ignored '
        f'(did you mean "{suggestion}"?)'
    )
    code, out, err = check(tmp_path, fs, config, capfd)
    assert (code, err, out[-1]) == (0, [warning], "Config is valid")
    code, out, err = check(tmp_path, fs, config, capfd, "--strict")
    assert (code, err) == (1, [warning, "Config is not valid (--strict: 1 warning(s))"])
    assert "Config is valid" not in out


def test_unknown_plugin_name_gets_the_closest_name(
    tmp_path: Path, fs: FakeTree, capfd: pytest.CaptureFixture[str]
) -> None:
    config = {"rulesets": [ruleset(detectors=[["g", {**DETECT, "name": "presure_above"}]])]}
    code, out, err = check(tmp_path, fs, config, capfd)
    assert (code, out) == (1, [])
    assert err == [
        f'{tmp_path / "oomd.json"}: ruleset "r": detector group "g": detector #1: plugin '
        '"presure_above": Could not locate plugin=presure_above in plugin registry '
        '(did you mean "pressure_above"?)',
        "Config is not valid",
    ]


@pytest.mark.parametrize(
    ("missing", "which"),
    [("actions", 'no "actions"'), ("detectors", 'no "detectors"')],
)
def test_a_ruleset_missing_detectors_or_actions_says_which(
    tmp_path: Path, fs: FakeTree, capfd: pytest.CaptureFixture[str], missing: str, which: str
) -> None:
    rs = ruleset()
    del rs[missing]
    code, _, err = check(tmp_path, fs, {"rulesets": [rs]}, capfd)
    assert (code, err) == (
        1,
        [
            f'{tmp_path / "oomd.json"}: ruleset "r": Ruleset is missing DetectorGroups or '
            f"missing Actions ({which})",
            "Config is not valid",
        ],
    )


def test_a_kill_plugin_used_as_a_detector_is_an_error(
    tmp_path: Path, fs: FakeTree, capfd: pytest.CaptureFixture[str]
) -> None:
    config = {"rulesets": [ruleset(detectors=[["g", KILL]])]}
    code, _, err = check(tmp_path, fs, config, capfd)
    assert (code, err) == (
        1,
        [
            f'{tmp_path / "oomd.json"}: ruleset "r": detector group "g": detector #1: plugin '
            '"kill_by_pressure": a kill plugin used as a detector: it would act every tick '
            'the group runs, with no ruleset context; move it to "actions"',
            "Config is not valid",
        ],
    )


def test_a_detector_used_as_an_action_is_a_warning(
    tmp_path: Path, fs: FakeTree, capfd: pytest.CaptureFixture[str]
) -> None:
    config = {"rulesets": [ruleset(actions=[DETECT, KILL])]}
    code, out, err = check(tmp_path, fs, config, capfd)
    assert (code, out[-1]) == (0, "Config is valid")
    assert err == [
        f'Warning: {tmp_path / "oomd.json"}: ruleset "r": action #1: plugin "pressure_above": '
        "a detector used as an action: it only continues or stops the action chain; "
        'did you mean to put it in "detectors"?'
    ]


def test_check_shows_effective_args_and_an_actions_own_post_action_delay(
    tmp_path: Path, fs: FakeTree, capfd: pytest.CaptureFixture[str]
) -> None:
    kill = {"name": "kill_by_pressure", "args": {**KILL["args"], "post_action_delay": "20"}}
    code, out, _ = check(tmp_path, fs, {"rulesets": [ruleset(actions=[kill])]}, capfd)
    assert code == 0
    assert out[:5] == [
        'ruleset "r" (post_action_delay=15s)',
        '  detector group "g":',
        "    pressure_above: cgroup=workload.slice ruleset_cgroup=(none) (default) "
        "resource=memory threshold=50 duration=5",
        "  actions:",
        "    kill_by_pressure: cgroup=workload.slice/* ruleset_cgroup=(none) (default) "
        "recursive=false (default) post_action_delay=20 dry=false (default) "
        "always_continue=false (default) debug=false (default) kernelkill=false (default) "
        "reap_memory=true (default) log_kmemalloc_prekill=false (default) "
        "kill_signal=SIGKILL (default) grace_period=0 (default) prefer=(none) (default) "
        "avoid=(none) (default) kill_mode=cgroup (default) resource=memory "
        "[after a kill this ruleset pauses 20s (the action's own post_action_delay), not 15s]",
    ]


def test_nothing_to_kill_is_an_error_saying_why(
    tmp_path: Path, tree: FakeTree, capfd: pytest.CaptureFixture[str]
) -> None:
    """No workload.slice on the host: the ruleset can never kill anything."""
    code, out, err = check(tmp_path, tree, {"rulesets": [ruleset()]}, capfd)
    assert code == 1
    assert out[-1] == (
        'ruleset "r": DISARMED because nothing to kill: workload.slice/* '
        "(workload.slice does not exist)"
    )
    assert err == [
        'Warning: ruleset "r": pressure_above watches workload.slice, which does not exist (yet)',
        "Error: no ruleset can ever act on this host: every ruleset is DISARMED",
        "Config is not valid",
    ]


def test_kill_actions_needing_a_missing_controller_disarm_the_ruleset(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    hybrid = FakeTree(tmp_path / "hybrid", controllers="cpu io")
    hybrid.cgroup("workload.slice")
    kill = {"name": "kill_by_memory_size_or_growth", "args": {"cgroup": "workload.slice/*"}}
    overview = {
        "name": "overview",
        "detectors": [
            ["g", {"name": "dump_cgroup_overview", "args": {"cgroup": "workload.slice"}}]
        ],
        "actions": [{"name": "continue"}],
    }
    config = {"rulesets": [overview, ruleset(actions=[kill])]}
    code, out, err = check(tmp_path, hybrid, config, capfd)
    assert code == 1
    assert out[-2:] == [
        'ruleset "overview": armed, watching dump_cgroup_overview(workload.slice); '
        "acts by continue (kills nothing)",
        'ruleset "r": DISARMED because no action can work here: kill_by_memory_size_or_growth '
        f"(cgroup2 controller(s) memory not enabled at {hybrid.fs})",
    ]
    assert err[-2:] == [
        "Error: nothing can ever be killed on this host: every ruleset that kills is DISARMED",
        "Config is not valid",
    ]


# -- drop-ins -------------------------------------------------------------------------

#: The README's drop-in example (docs: "Drop-in configs").
README_BASE = {
    "rulesets": [
        {
            "name": "protect workload",
            "drop-in": {"actions": True},
            "detectors": [["pressure", DETECT]],
            "actions": [KILL],
        }
    ]
}
README_DROPIN = {
    "rulesets": [
        {
            "name": "protect workload",
            "actions": [
                {
                    "name": "kill_by_memory_size_or_growth",
                    "args": {"cgroup": "workload.slice/batch*"},
                }
            ],
        }
    ]
}


def dropin_dir(tmp_path: Path, content: Any) -> Path:
    directory = tmp_path / "dropins"
    directory.mkdir(exist_ok=True)
    path = directory / "batch.json"
    path.write_text(json.dumps(content))
    os.chmod(path, 0o644)
    return directory


def test_readme_drop_in_example_checks_as_printed(
    tmp_path: Path, fs: FakeTree, capfd: pytest.CaptureFixture[str]
) -> None:
    """The README's config and drop-in, taken from README.md as printed."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    config = readme.split("## A config\n\n```jsonc\n", 1)[1].split("```", 1)[0]
    dropin = readme.split("<<'JSON'\n", 1)[1].split("\nJSON\n", 1)[0]
    directory = tmp_path / "dropins"
    directory.mkdir()
    (directory / "batch.json").write_text(dropin)
    os.chmod(directory / "batch.json", 0o644)
    code, out, err = check(tmp_path, fs, config, capfd, "-w", str(directory))
    assert (code, err) == (0, [])
    assert f'drop-in {directory / "batch.json"}: applies to "protect the workload"' in out
    assert (
        'ruleset "protect the workload" (drop-in batch.json): armed, watching '
        "pressure_above(workload.slice); may kill workload.slice/batch* "
        "(kill_by_memory_size_or_growth)"
    ) in out
    directory = dropin_dir(tmp_path, README_DROPIN)
    code, out, err = check(
        tmp_path, fs, README_BASE, capfd, "--drop-in", str(directory / "batch.json")
    )
    assert (code, out[-1]) == (0, "Config is valid")


def test_a_refused_drop_in_says_what_the_base_ruleset_must_allow(
    tmp_path: Path, fs: FakeTree, capfd: pytest.CaptureFixture[str]
) -> None:
    base = json.loads(json.dumps(README_BASE))
    del base["rulesets"][0]["drop-in"]
    directory = dropin_dir(tmp_path, README_DROPIN)
    code, _, err = check(tmp_path, fs, base, capfd, "-w", str(directory))
    path = directory / "batch.json"
    assert (code, err) == (
        1,
        [
            f'{path}: ruleset "protect workload": Error: Action drop-in configs disabled (the '
            f"base ruleset in {tmp_path / 'oomd.json'} must allow them: add "
            '"drop-in": {"actions": true} to it)',
            f"drop-in {path} would be refused",
            "Config is not valid",
        ],
    )


def test_unknown_keys_of_a_drop_in_are_named(
    tmp_path: Path, fs: FakeTree, capfd: pytest.CaptureFixture[str]
) -> None:
    dropin = json.loads(json.dumps(README_DROPIN))
    dropin["rulesets"][0]["action"] = dropin["rulesets"][0].pop("actions")
    directory = dropin_dir(tmp_path, dropin)
    code, _, err = check(tmp_path, fs, README_BASE, capfd, "-w", str(directory), "--strict")
    assert code == 1
    assert err[0] == (
        f'Warning: {directory / "batch.json"}: ruleset "protect workload": unknown key '
        '"action" is ignored (did you mean "actions"?)'
    )


# -- the built-in policy on the host ------------------------------------------------


def fitted(tree: FakeTree) -> tuple[list[armed.Status], list[str]]:
    host = HostFacts(tree.fs, frozenset((tree.root / "cgroup.controllers").read_text().split()))
    ir, notes = adapt_policy(default_policy(), host)
    env = PluginEnv(cgroup_fs=tree.fs, controllers=host.controllers)
    engine = compile_config(ir, env).engine
    return armed.analyse(engine), notes


def test_default_policy_on_a_hybrid_like_host_is_armed_and_names_its_targets(
    tmp_path: Path,
) -> None:
    """No memory controller, no user.slice or system.slice: pressure-based ranking and
    /proc-based detectors, watching the whole host, may kill any top-level cgroup."""
    tree = FakeTree(tmp_path / "hybrid", controllers="hugetlb")
    statuses, notes = fitted(tree)
    assert [s.line for s in statuses] == [
        'ruleset "system overview": armed, watching dump_cgroup_overview(/); '
        "acts by continue (kills nothing)",
        'ruleset "user session protection": armed, watching pressure_above(/); '
        "may kill * (kill_by_pressure)",
        'ruleset "protection against low swap": armed, watching swap_free; '
        "may kill * (kill_by_pressure)",
    ]
    assert armed.problem(statuses, 3) is None
    assert (
        'ruleset "user session protection": kill_by_memory_size_or_growth needs the memory '
        f"controller, not enabled at {tree.fs}; uses kill_by_pressure (memory pressure) instead"
    ) in notes


def test_default_policy_on_a_pure_cgroup2_host_is_upstreams_and_armed(tmp_path: Path) -> None:
    tree = FakeTree(tmp_path / "pure")
    tree.cgroup("user.slice")
    tree.cgroup("system.slice")
    statuses, notes = fitted(tree)
    assert notes == []
    targets = (
        "user.slice/user-*.slice/session-*.scope, user.slice/user-*.slice/user@*.service/*, "
        "system.slice/*"
    )
    assert [s.line for s in statuses] == [
        'ruleset "system overview": armed, watching dump_cgroup_overview(system.slice); '
        "acts by continue (kills nothing)",
        'ruleset "user session protection": armed, watching pressure_above(user.slice), '
        "memory_reclaim(user.slice), pressure_above(system.slice), "
        "memory_reclaim(system.slice); may kill "
        + ", ".join(f"{t} (kill_by_memory_size_or_growth)" for t in targets.split(", ")),
        'ruleset "protection against low swap": armed, watching swap_free; may kill '
        + ", ".join(f"{t} (kill_by_swap_usage)" for t in targets.split(", ")),
    ]
