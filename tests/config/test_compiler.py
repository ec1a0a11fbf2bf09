"""ConfigIR -> Engine (``oomd.config.compiler``): upstream ``ConfigCompiler.cpp``'s checks
in their order (reference section 2.4) and ``PluginArgParser``'s arg rules (reference
section 2.5), except that every problem is reported at once, each naming file,
ruleset, detector group / action, plugin and arg.

Cases marked "verified against upstream" were checked with the Debian oomd 0.5.0
binary (``oomd -c``); the suite does not need the binary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oomd.config.compiler import (
    DEFAULT_POST_ACTION_DELAY,
    DEFAULT_PREKILL_HOOK_TIMEOUT,
    Compiled,
    compile_config,
)
from oomd.config.errors import ConfigError
from oomd.config.parser import load_config, parse_config
from oomd.engine.plugin import Plugin, PluginEnv
from oomd.engine.ruleset import Ruleset

SOURCE = "test.json"
DATA = Path(__file__).parent / "data"

RS = f'{SOURCE}: ruleset "rs"'
DETECTOR = f'{RS}: detector group "grp": detector #1'
ACTION = f"{RS}: action #1"
PRESSURE = f'{DETECTOR}: plugin "pressure_above"'
KILL = f'{ACTION}: plugin "kill_by_memory_size_or_growth"'


def pressure_above(**args: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "cgroup": "workload.slice",
        "resource": "memory",
        "threshold": "60",
        "duration": "10",
    }
    base.update(args)
    return {"name": "pressure_above", "args": {k: v for k, v in base.items() if v is not ...}}


def kill_growth(**args: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"cgroup": "workload.slice/*"}
    base.update(args)
    return {"name": "kill_by_memory_size_or_growth", "args": base}


def ruleset(**fields: Any) -> dict[str, Any]:
    """A valid ruleset named "rs" (one group "grp" with a continue detector, one
    continue action), with ``fields`` replacing or adding keys."""
    rs: dict[str, Any] = {
        "name": "rs",
        "detectors": [["grp", {"name": "continue"}]],
        "actions": [{"name": "continue"}],
    }
    rs.update(fields)
    return rs


def with_detector(detector: Any, **fields: Any) -> dict[str, Any]:
    return ruleset(detectors=[["grp", detector]], **fields)


def with_action(action: Any, **fields: Any) -> dict[str, Any]:
    return ruleset(actions=[action], **fields)


def compile_root(root: Any, env: PluginEnv) -> Compiled:
    return compile_config(parse_config(json.dumps(root), SOURCE), env)


def compile_rulesets(env: PluginEnv, *rulesets: Any) -> Compiled:
    return compile_root({"rulesets": list(rulesets)}, env)


def problems(env: PluginEnv, *rulesets: Any, **root: Any) -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        compile_root({"rulesets": list(rulesets), **root}, env)
    return excinfo.value.problems


def only_ruleset(compiled: Compiled) -> Ruleset:
    assert len(compiled.engine.rulesets) == 1
    return compiled.engine.rulesets[0]


def only_detector(env: PluginEnv, detector: Any) -> Plugin:
    rs = only_ruleset(compile_rulesets(env, with_detector(detector)))
    return rs.detector_groups[0].detectors[0]


def only_action(env: PluginEnv, action: Any) -> Plugin:
    rs = only_ruleset(compile_rulesets(env, with_action(action)))
    return rs.actions[0]


# -- a valid config -----------------------------------------------------------------------


def test_valid_config_compiles_to_an_engine_with_parsed_args(env: PluginEnv) -> None:
    compiled = compile_rulesets(
        env,
        ruleset(
            detectors=[["grp", pressure_above(threshold=60, duration="10")]],
            actions=[kill_growth(dry=True, size_threshold="30")],
        ),
    )
    rs = only_ruleset(compiled)
    assert rs.name == "rs"
    assert [g.name for g in rs.detector_groups] == ["grp"]
    detector = rs.detector_groups[0].detectors[0]
    action = rs.actions[0]
    assert (detector.name, action.name) == ("pressure_above", "kill_by_memory_size_or_growth")
    assert getattr(detector, "threshold") == 60  # noqa: B009
    assert getattr(detector, "duration") == 10  # noqa: B009
    assert getattr(detector, "resource") == "memory"  # noqa: B009
    assert getattr(action, "dry") is True  # noqa: B009
    assert getattr(action, "size_threshold") == 30  # noqa: B009
    assert getattr(action, "growing_size_percentile") == 80  # noqa: B009
    assert action.provided == frozenset({"cgroup", "dry", "size_threshold"})
    assert compiled.warnings == []


def test_ruleset_defaults_are_upstreams(env: PluginEnv) -> None:
    """Reference 2.7: post_action_delay 15 s, prekill_hook_timeout 5 s."""
    rs = only_ruleset(compile_rulesets(env, ruleset()))
    assert (DEFAULT_POST_ACTION_DELAY, DEFAULT_PREKILL_HOOK_TIMEOUT) == (15, 5)
    assert rs.post_action_delay == 15
    assert rs.prekill_hook_timeout == 5
    assert (rs.silence_engine, rs.silence_plugins) == (False, False)


def test_empty_and_null_configs_compile_to_an_empty_engine(env: PluginEnv) -> None:
    """Reference 2.4: an empty rulesets list is valid; 2.3: a null root is too."""
    assert compile_root({"rulesets": []}, env).engine.rulesets == []
    assert compile_config(parse_config("null", SOURCE), env).engine.rulesets == []


def test_duplicate_ruleset_names_are_allowed(env: PluginEnv) -> None:
    """Reference 2.4: duplicate ruleset names are allowed."""
    compiled = compile_rulesets(env, ruleset(), ruleset())
    assert [rs.name for rs in compiled.engine.rulesets] == ["rs", "rs"]


# -- rule 1: name -------------------------------------------------------------------------


def test_ruleset_without_name_is_rejected(env: PluginEnv) -> None:
    """Reference 2.4 rule 1: `Ruleset is missing name`."""
    assert problems(env, ruleset(name="")) == [f"{SOURCE}: ruleset #1: Ruleset is missing name"]


def test_null_ruleset_is_rejected_as_missing_name_and_parts(env: PluginEnv) -> None:
    """Reference 2.3: a null ruleset is all defaults, so nameless and empty."""
    assert problems(env, ruleset(), None) == [
        f"{SOURCE}: ruleset #2: Ruleset is missing name",
        f"{SOURCE}: ruleset #2: Ruleset is missing DetectorGroups or missing Actions"
        ' (no "detectors" and no "actions")',
    ]


# -- rule 2: silence-logs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "engine", "plugins"),
    [
        ("", False, False),
        ("engine", True, False),
        ("plugins", False, True),
        ("engine,plugins", True, True),
        ("engine , plugins", True, True),
        (" plugins ,\tengine\n", True, True),
        (",,", False, False),
        ("engine,,engine", True, False),
    ],
)
def test_silence_logs_is_trimmed_and_split_on_commas(
    env: PluginEnv, value: str, engine: bool, plugins: bool
) -> None:
    """Reference 2.4 rule 2: trim, split on ",", drop empty pieces, trim each
    (verified against upstream: " engine , plugins " and ",," are accepted)."""
    rs = only_ruleset(compile_rulesets(env, ruleset(**{"silence-logs": value})))
    assert (rs.silence_engine, rs.silence_plugins) == (engine, plugins)


@pytest.mark.parametrize(
    ("value", "part"),
    [
        ("bogus", "bogus"),
        ("engine,bogus", "bogus"),
        ("engine plugins", "engine plugins"),
        ("Engine", "Engine"),
        (7, "7"),
    ],
)
def test_unrecognized_silence_logs_source_is_rejected(
    env: PluginEnv, value: Any, part: str
) -> None:
    """Reference 2.4 rule 2: `Unrecognized log source=<part>` (verified against
    upstream for "engine,bogus" and for the JSON number 7)."""
    assert problems(env, ruleset(**{"silence-logs": value})) == [
        f"{RS}: Unrecognized log source={part}"
    ]


# -- rule 3: detector groups and actions present ----------------------------------------


@pytest.mark.parametrize(
    ("fields", "which"),
    [
        ({"detectors": []}, 'no "detectors"'),
        ({"actions": []}, 'no "actions"'),
        ({"detectors": None, "actions": None}, 'no "detectors" and no "actions"'),
        ({"detectors": {}}, 'no "detectors"'),
    ],
)
def test_ruleset_without_detector_groups_or_actions_is_rejected(
    env: PluginEnv, fields: dict[str, Any], which: str
) -> None:
    """Reference 2.4 rule 3: `Ruleset is missing DetectorGroups or missing Actions`,
    saying which."""
    assert problems(env, ruleset(**fields)) == [
        f"{RS}: Ruleset is missing DetectorGroups or missing Actions ({which})"
    ]


# -- rules 4 and 5: post_action_delay and prekill_hook_timeout ----------------------------

DELAY_KEYS = [
    ("post_action_delay", "post_action_delay"),
    ("prekill_hook_timeout", "prekill_hook_timeout"),
]


@pytest.mark.parametrize(("key", "attr"), DELAY_KEYS)
@pytest.mark.parametrize(
    ("value", "expected"), [("20", 20), (20, 20), ("0", 0), (" 7", 7), ("+3", 3)]
)
def test_delay_is_read_with_stoi(
    env: PluginEnv, key: str, attr: str, value: Any, expected: int
) -> None:
    """Reference 2.4 rules 4-5: the value is read with stoi."""
    compiled = compile_rulesets(env, ruleset(**{key: value}))
    assert getattr(only_ruleset(compiled), attr) == expected
    assert compiled.warnings == []


@pytest.mark.parametrize(("key", "attr"), DELAY_KEYS)
@pytest.mark.parametrize("value", ["-1", -3, "-5s"])
def test_negative_delay_is_rejected(env: PluginEnv, key: str, attr: str, value: Any) -> None:
    """Reference 2.4 rules 4-5: `Ruleset <key> must be non-negative` (verified against
    upstream for post_action_delay "-1" and prekill_hook_timeout -3)."""
    found = problems(env, ruleset(**{key: value}))
    assert found == [f"{RS}: Ruleset {key} must be non-negative"]


@pytest.mark.parametrize(("key", "attr"), DELAY_KEYS)
@pytest.mark.parametrize(("value", "text"), [("abc", "abc"), (True, "true"), ("-", "-")])
def test_non_numeric_delay_is_rejected_instead_of_aborting(
    env: PluginEnv, key: str, attr: str, value: Any, text: str
) -> None:
    """Reference 2.4 rule 4 (quirk): stoi throws on "abc" or "true" and upstream aborts
    (verified: exit 134); we reject the config."""
    assert problems(env, ruleset(**{key: value})) == [
        f"{RS}: Ruleset {key}: {text!r} is not an integer"
    ]


@pytest.mark.parametrize(("key", "attr"), DELAY_KEYS)
@pytest.mark.parametrize("value", ["", None])
def test_empty_delay_means_the_default(env: PluginEnv, key: str, attr: str, value: Any) -> None:
    """Reference 2.4 rule 4: only a non-empty string is read."""
    rs = only_ruleset(compile_rulesets(env, ruleset(**{key: value})))
    assert getattr(rs, attr) == {"post_action_delay": 15, "prekill_hook_timeout": 5}[key]


@pytest.mark.parametrize(("key", "attr"), DELAY_KEYS)
def test_out_of_range_delay_is_rejected_instead_of_aborting(
    env: PluginEnv, key: str, attr: str
) -> None:
    """stoi throws out_of_range on values beyond int (upstream aborts)."""
    assert problems(env, ruleset(**{key: "99999999999"})) == [
        f"{RS}: Ruleset {key}: '99999999999' is out of range for an integer"
    ]


@pytest.mark.parametrize(("key", "attr"), DELAY_KEYS)
def test_delay_with_trailing_garbage_is_accepted_with_a_warning(
    env: PluginEnv, key: str, attr: str
) -> None:
    """Reference 2.4 rule 4: trailing garbage is accepted by stoi (verified against
    upstream: "10abc" compiles); we warn, naming file and ruleset."""
    compiled = compile_rulesets(env, ruleset(**{key: "10abc"}))
    assert getattr(only_ruleset(compiled), attr) == 10
    assert len(compiled.warnings) == 1
    assert compiled.warnings[0].startswith(f"{RS}: {key} '10abc' read as 10")


def test_json_real_delay_is_read_as_its_integer_part_with_a_warning(env: PluginEnv) -> None:
    """Reference 2.3: 10.5 arrives as "10.5"; stoi reads 10."""
    compiled = compile_rulesets(env, ruleset(post_action_delay=10.5))
    assert only_ruleset(compiled).post_action_delay == 10
    assert len(compiled.warnings) == 1


# -- rule 6: detector groups ----------------------------------------------------------------


def test_detector_group_without_name_is_rejected(env: PluginEnv) -> None:
    """Reference 2.4 rule 6: `DetectorGroup is missing name` (the group's first element
    is not a string, reference 2.3)."""
    assert problems(env, ruleset(detectors=[[{"name": "continue"}]])) == [
        f"{RS}: detector group #1: DetectorGroup is missing name"
    ]


def test_detector_group_without_detectors_is_rejected(env: PluginEnv) -> None:
    """Reference 2.4 rule 6: `DetectorGroup is missing Detectors`."""
    assert problems(env, ruleset(detectors=[["grp", {"name": "continue"}], ["empty"]])) == [
        f'{RS}: detector group "empty": DetectorGroup is missing Detectors'
    ]


def test_detector_group_that_is_not_an_array_misses_name_and_detectors(env: PluginEnv) -> None:
    """Reference 2.3: a non-array group is an empty group."""
    assert problems(env, ruleset(detectors=[{"name": "continue"}])) == [
        f"{RS}: detector group #1: DetectorGroup is missing name",
        f"{RS}: detector group #1: DetectorGroup is missing Detectors",
    ]


# -- plugins: name, registry ----------------------------------------------------------------


def test_detector_without_name_is_rejected(env: PluginEnv) -> None:
    """Reference 2.4: `Plugin is missing name`."""
    assert problems(env, with_detector({"args": {}})) == [f"{DETECTOR}: Plugin is missing name"]


def test_action_without_name_is_rejected(env: PluginEnv) -> None:
    assert problems(env, with_action("continue")) == [f"{ACTION}: Plugin is missing name"]


def test_unknown_plugin_is_rejected_as_not_in_the_registry(env: PluginEnv) -> None:
    """Reference 2.4: `Could not locate plugin=<name> in plugin registry`."""
    assert problems(env, with_action({"name": "bogus"})) == [
        f'{ACTION}: plugin "bogus": Could not locate plugin=bogus in plugin registry'
    ]


@pytest.mark.parametrize("name", ["continue", "stop"])
def test_continue_and_stop_accept_and_ignore_any_args(env: PluginEnv, name: str) -> None:
    """Reference 5.1: continue/stop take no args and ignore any given."""
    plugin = only_action(env, {"name": name, "args": {"anything": "at all", "n": 1}})
    assert plugin.name == name


# -- plugin args: required, unknown, values -------------------------------------------------


def test_required_arg_missing_is_rejected(env: PluginEnv) -> None:
    """Reference 2.5 step 1: `Required arg "<arg>" missing`."""
    assert problems(env, with_detector(pressure_above(threshold=...))) == [
        f'{PRESSURE}: Required arg "threshold" missing'
    ]


def test_every_missing_required_arg_is_named(env: PluginEnv) -> None:
    """Upstream names one (unspecified) missing arg; we name each."""
    assert problems(env, with_detector({"name": "pressure_above", "args": {"cgroup": "a"}})) == [
        f'{PRESSURE}: Required arg "resource" missing',
        f'{PRESSURE}: Required arg "threshold" missing',
        f'{PRESSURE}: Required arg "duration" missing',
    ]


def test_plugin_without_any_cgroup_is_rejected(env: PluginEnv) -> None:
    """Reference 5.12: v0.5.0 requires "cgroup"; we accept "ruleset_cgroup" instead."""
    assert problems(env, with_action(kill_growth(cgroup=""))) == [
        f'{KILL}: arg "cgroup": Required arg "cgroup" missing (or give "ruleset_cgroup")'
    ]
    plugin = only_action(
        env, {"name": "kill_by_memory_size_or_growth", "args": {"ruleset_cgroup": "a"}}
    )
    assert plugin.name == "kill_by_memory_size_or_growth"


def test_unknown_arg_is_rejected_naming_the_known_ones(env: PluginEnv) -> None:
    """Reference 2.5 step 2: `Unknown arg "<arg>"` (verified against upstream:
    "bogus" in kill_by_memory_size_or_growth fails the config)."""
    assert problems(env, with_detector(pressure_above(bogus="1"))) == [
        f'{PRESSURE}: Unknown arg "bogus" '
        "(known args: cgroup, duration, resource, ruleset_cgroup, threshold)"
    ]


def test_null_array_or_object_arg_is_rejected_instead_of_silently_dropped(
    env: PluginEnv,
) -> None:
    """Reference 2.3 (quirk): upstream silently drops such an arg and every arg after it
    (verified: "dry": null hides "recursive": "bogus"); we reject it."""
    assert problems(env, with_action(kill_growth(dry=None, recursive="bogus"))) == [
        f'{KILL}: arg "dry" must be a string, number or bool '
        "(upstream silently drops it and every arg sorting after it)",
        f"{KILL}: arg \"recursive\": 'bogus' is not a bool (true, True, 1, false, False or 0)",
    ]


def test_array_arg_is_rejected_unless_the_plugin_takes_a_list(env: PluginEnv) -> None:
    assert problems(env, with_action(kill_growth(dry=["true"]))) == [
        f'{KILL}: arg "dry": must be a string, number or bool, not an array'
    ]


@pytest.mark.parametrize(
    ("args", "arg"),
    [
        ({"threshold": "abc"}, "threshold"),
        ({"threshold": ""}, "threshold"),
        ({"duration": "x10"}, "duration"),
        ({"threshold": "99999999999"}, "threshold"),
        ({"resource": "cpu"}, "resource"),
        ({"resource": "Memory"}, "resource"),
        ({"resource": 1}, "resource"),
    ],
)
def test_bad_pressure_above_value_is_rejected_naming_the_arg(
    env: PluginEnv, args: dict[str, Any], arg: str
) -> None:
    """Reference 2.5: threshold/duration are stoi ints, resource is exactly io or
    memory (verified against upstream: threshold "abc" and resource "cpu" fail)."""
    found = problems(env, with_detector(pressure_above(**args)))
    assert len(found) == 1
    assert found[0].startswith(f'{PRESSURE}: arg "{arg}": ')


@pytest.mark.parametrize(
    ("args", "arg"),
    [
        ({"growing_size_percentile": 100}, "growing_size_percentile"),
        ({"growing_size_percentile": "-1"}, "growing_size_percentile"),
        ({"size_threshold": "-1"}, "size_threshold"),
        ({"min_growth_ratio": "abc"}, "min_growth_ratio"),
        ({"post_action_delay": "-1"}, "post_action_delay"),
        ({"dry": "yes"}, "dry"),
        ({"dry": 1.0}, "dry"),
        ({"recursive": "TRUE"}, "recursive"),
        ({"debug": ""}, "debug"),
    ],
)
def test_bad_kill_plugin_value_is_rejected_naming_the_arg(
    env: PluginEnv, args: dict[str, Any], arg: str
) -> None:
    """Reference 2.5, 5.12, 5.13: bools are exactly true/True/1/false/False/0 (JSON 1.0
    arrives as "1.0"); size_threshold and post_action_delay are non-negative;
    growing_size_percentile is in [0, 100) (upstream HEAD KillMemoryGrowthTest
    InvalidArgs). Verified against upstream: dry "yes", dry 1.0, recursive "yes",
    size_threshold "-1", min_growth_ratio "abc" and post_action_delay "-1" fail."""
    found = problems(env, with_action(kill_growth(**args)))
    assert len(found) == 1
    assert found[0].startswith(f'{KILL}: arg "{arg}": ')


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "infinity"])
def test_min_growth_ratio_that_is_not_a_finite_number_is_rejected(
    env: PluginEnv, value: str
) -> None:
    """Reference 5.13: upstream parses min_growth_ratio as a non-negative int, so it
    rejects "nan" and "inf" (verified against upstream: both fail the config). We read
    it as a float (docs/compatibility.md), but a NaN or infinite ratio is no ratio: NaN
    would silently switch the growth phase off."""
    found = problems(env, with_action(kill_growth(min_growth_ratio=value)))
    assert len(found) == 1
    assert found[0].startswith(f'{KILL}: arg "min_growth_ratio": ')


def test_growing_size_percentile_99_is_accepted(env: PluginEnv) -> None:
    """Upstream HEAD KillMemoryGrowthTest.InvalidArgs: 99 accepted, 100 rejected."""
    plugin = only_action(env, kill_growth(growing_size_percentile=99))
    assert getattr(plugin, "growing_size_percentile") == 99  # noqa: B009


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("True", True),
        ("1", True),
        (1, True),
        ("false", False),
        ("False", False),
        ("0", False),
        (0, False),
    ],
)
def test_bool_arg_accepts_upstreams_spellings_and_json_bools(
    env: PluginEnv, value: Any, expected: bool
) -> None:
    """Reference 2.3/2.5: JSON true arrives as "true", a valid bool (verified against
    upstream: "dry": true, "dry": "True" and "dry": 1 compile)."""
    plugin = only_action(env, kill_growth(dry=value))
    assert getattr(plugin, "dry") is expected  # noqa: B009


@pytest.mark.parametrize("value", ["80.5", 80.5, "80abc", 80.0])
def test_lenient_int_is_accepted_with_a_warning(env: PluginEnv, value: Any) -> None:
    """Reference 2.3/2.5: stoi reads a numeric prefix, so "80.5" (or JSON 80.5) is 80
    (verified against upstream: both compile). We warn, naming where."""
    compiled = compile_rulesets(env, with_detector(pressure_above(threshold=value)))
    detector = only_ruleset(compiled).detector_groups[0].detectors[0]
    assert getattr(detector, "threshold") == 80  # noqa: B009
    assert len(compiled.warnings) == 1
    assert compiled.warnings[0].startswith(f'{PRESSURE}: arg "threshold": ')
    assert "read as 80" in compiled.warnings[0]


def test_float_arg_keeps_its_fraction(env: PluginEnv) -> None:
    plugin = only_action(env, kill_growth(min_growth_ratio=1.5))
    assert getattr(plugin, "min_growth_ratio") == 1.5  # noqa: B009


def test_cgroup_arg_becomes_patterns_under_the_cgroup_fs(env: PluginEnv) -> None:
    """Reference 2.5: a cgroup list is split on "," with empty pieces dropped."""
    plugin = only_action(env, kill_growth(cgroup="a.slice,,b.slice/*"))
    patterns = getattr(plugin, "cgroup")  # noqa: B009
    assert len(patterns) == 2


# -- ruleset cgroup, xattr_filter, prekill hooks ---------------------------------------------


def test_ruleset_level_cgroup_compiles_to_a_per_cgroup_ruleset(env: PluginEnv) -> None:
    """Reference 2.8/3.9: HEAD's ruleset-level cgroup (and xattr_filter) make a
    per-cgroup ruleset; its copies are built by a factory with fresh plugins."""
    compiled = compile_rulesets(
        env, ruleset(cgroup="system.slice/*,user.slice", xattr_filter="user.x")
    )
    (rs,) = compiled.engine.rulesets
    assert [p.text for p in rs.cgroups] == ["system.slice/*", "user.slice"]
    assert rs.xattr_filter == "user.x"
    assert rs.factory is not None
    first, second = rs.factory(), rs.factory()
    assert first is not None and second is not None
    assert first.cgroups == () and first.actions[0] is not second.actions[0]


def test_xattr_filter_without_ruleset_cgroup_only_warns(env: PluginEnv) -> None:
    """Reference 2.8: xattr_filter only matters with a ruleset-level cgroup."""
    compiled = compile_rulesets(env, ruleset(xattr_filter="trusted.x"))
    assert len(compiled.warnings) == 1
    assert compiled.warnings[0].startswith(f"{RS}: ")
    assert "xattr_filter" in compiled.warnings[0]


def test_prekill_hooks_compile_from_their_own_registry(env: PluginEnv) -> None:
    """Reference 3.11: hooks are not plugins (and plugins are not hooks)."""
    compiled = compile_root(
        {
            "rulesets": [ruleset()],
            "prekill_hooks": [
                {"name": "dummy_prekill_hook", "args": {"cgroup": "workload.slice/*"}},
                {"name": "exec_prekill_hook", "args": {"cgroup": "/", "argv": ["/bin/true", "x"]}},
            ],
        },
        env,
    )
    assert [h.name for h in compiled.engine.prekill_hooks] == [
        "dummy_prekill_hook",
        "exec_prekill_hook",
    ]
    assert problems(env, ruleset(), prekill_hooks=[{"name": "continue"}]) == [
        f'{SOURCE}: prekill hook #1: plugin "continue": Unknown PrekillHook "continue"'
    ]
    assert problems(
        env, ruleset(), prekill_hooks=[{"name": "dummy_prekill_hook", "args": {"bogus": 1}}]
    ) == [
        f'{SOURCE}: prekill hook #1: plugin "dummy_prekill_hook": Unknown arg "bogus" (known args: cgroup, xattr)'
    ]
    assert problems(
        env, ruleset(), prekill_hooks=[{"name": "exec_prekill_hook", "args": {"cgroup": "/"}}]
    ) == [f'{SOURCE}: prekill hook #1: plugin "exec_prekill_hook": Required arg "argv" missing']


def test_empty_prekill_hooks_list_is_fine(env: PluginEnv) -> None:
    compile_root({"rulesets": [ruleset()], "prekill_hooks": []}, env)


def test_a_further_registry_compiles_through_the_same_checks(env: PluginEnv) -> None:
    """The compiler is generic over its registries (plugins, prekill hooks, the
    post-kill hooks to come): a new one needs a Registry, not new code paths."""
    from oomd.config.compiler import PREKILL_HOOKS, Registry, _Compiler
    from oomd.config.ir import ConfigIR, PluginIR
    from oomd.engine.prekill import PrekillHook

    kind = Registry(PREKILL_HOOKS.lookup, PrekillHook, "No such hook {name}", lambda: ())
    compiler = _Compiler(ConfigIR(source=SOURCE), env)
    built = compiler.plugins(
        [
            PluginIR("dummy_prekill_hook", {"cgroup": "a", "xattr": "x"}),
            PluginIR("continue", {}),
            PluginIR("dummy_prekill_hook", {"cgroup": "a", "bogus": "1"}),
        ],
        kind,
        "post-kill hook",
    )
    assert [type(hook).__name__ for hook in built] == ["DummyPrekillHook"]
    assert compiler.problems == [
        f'{SOURCE}: post-kill hook #2: plugin "continue": No such hook continue',
        f'{SOURCE}: post-kill hook #3: plugin "dummy_prekill_hook": '
        'Unknown arg "bogus" (known args: cgroup, xattr)',
    ]
    # A class of the wrong kind is refused, never built.
    wrong = Registry(lambda _name: Plugin, PrekillHook, "", lambda: ())
    assert compiler.plugins([PluginIR("p", {})], wrong, "hook") == []
    assert compiler.problems[-1] == f'{SOURCE}: hook #1: plugin "p": Plugin is not a PrekillHook'


# -- host capabilities ----------------------------------------------------------------------


def test_plugin_needing_a_missing_controller_is_compiled_but_unavailable(
    env: PluginEnv,
) -> None:
    env = env.replace(controllers=frozenset({"cpu", "io"}))
    compiled = compile_rulesets(env, with_action(kill_growth()))
    plugin = only_ruleset(compiled).actions[0]
    assert plugin.unavailable is not None
    assert "memory" in plugin.unavailable
    assert len(compiled.warnings) == 1
    assert compiled.warnings[0].startswith(f"{KILL}: cannot work on this host")


def test_plugin_whose_controllers_are_present_is_available(env: PluginEnv) -> None:
    env = env.replace(controllers=frozenset({"cpu", "io", "memory"}))
    compiled = compile_rulesets(env, with_action(kill_growth()))
    assert only_ruleset(compiled).actions[0].unavailable is None
    assert compiled.warnings == []


def test_unknown_controllers_do_not_disable_plugins(env: PluginEnv) -> None:
    assert env.controllers is None
    compiled = compile_rulesets(env, with_action(kill_growth()))
    assert only_ruleset(compiled).actions[0].unavailable is None
    assert compiled.warnings == []


def test_plugin_needing_no_controller_stays_available(env: PluginEnv) -> None:
    env = env.replace(controllers=frozenset())
    compiled = compile_rulesets(env, with_detector(pressure_above()))
    assert only_ruleset(compiled).detector_groups[0].detectors[0].unavailable is None
    assert compiled.warnings == []


# -- all at once, in order -----------------------------------------------------------------


def test_problems_of_one_ruleset_come_in_upstreams_rule_order(env: PluginEnv) -> None:
    """Reference 2.4: name, silence-logs, groups/actions, post_action_delay,
    prekill_hook_timeout, then each group and action; we report all of them."""
    assert problems(
        env,
        {
            "name": "",
            "silence-logs": "bogus",
            "post_action_delay": "-1",
            "prekill_hook_timeout": "-2",
            "detectors": [],
        },
    ) == [
        f"{SOURCE}: ruleset #1: Ruleset is missing name",
        f"{SOURCE}: ruleset #1: Unrecognized log source=bogus",
        f"{SOURCE}: ruleset #1: Ruleset is missing DetectorGroups or missing Actions"
        ' (no "detectors" and no "actions")',
        f"{SOURCE}: ruleset #1: Ruleset post_action_delay must be non-negative",
        f"{SOURCE}: ruleset #1: Ruleset prekill_hook_timeout must be non-negative",
    ]


def test_every_problem_of_a_config_is_reported_with_its_location(env: PluginEnv) -> None:
    """Upstream stops at the first problem; we name file, ruleset, group, plugin, arg
    for each."""
    assert problems(
        env,
        {
            "name": "first",
            "detectors": [
                ["ok", {"name": "continue"}],
                ["bad", pressure_above(threshold="abc"), pressure_above(resource="cpu")],
            ],
            "actions": [{"name": "continue"}, kill_growth(dry="yes", bogus="1")],
        },
        {
            "name": "second",
            "detectors": [["g", {"name": "nope"}]],
            "actions": [kill_growth(growing_size_percentile=100)],
        },
    ) == [
        f'{SOURCE}: ruleset "first": detector group "bad": detector #1: plugin "pressure_above": '
        "arg \"threshold\": 'abc' is not an integer",
        f'{SOURCE}: ruleset "first": detector group "bad": detector #2: plugin "pressure_above": '
        "arg \"resource\": 'cpu' is not a resource (memory or io)",
        f'{SOURCE}: ruleset "first": action #2: plugin "kill_by_memory_size_or_growth": '
        'Unknown arg "bogus" (known args: always_continue, avoid, cgroup, debug, dry, '
        "grace_period, growing_size_percentile, kernelkill, kill_mode, kill_signal, "
        "log_kmemalloc_prekill, min_growth_ratio, post_action_delay, prefer, reap_memory, "
        "recursive, ruleset_cgroup, size_threshold)",
        f'{SOURCE}: ruleset "first": action #2: plugin "kill_by_memory_size_or_growth": '
        "arg \"dry\": 'yes' is not a bool (true, True, 1, false, False or 0)",
        f'{SOURCE}: ruleset "second": detector group "g": detector #1: plugin "nope": '
        "Could not locate plugin=nope in plugin registry",
        f'{SOURCE}: ruleset "second": action #1: plugin "kill_by_memory_size_or_growth": '
        'arg "growing_size_percentile": growing_size_percentile must be in range [0, 100)',
    ]


def test_parser_warnings_reach_the_compiled_warnings(env: PluginEnv) -> None:
    """Reference 2.1: trailing content is ignored by upstream; we keep the warning."""
    ir = parse_config(json.dumps({"rulesets": [ruleset()]}) + " trailing", SOURCE)
    compiled = compile_config(ir, env)
    assert len(compiled.warnings) == 1
    assert compiled.warnings[0].startswith(f"{SOURCE}:1:")


# -- upstream's example config -------------------------------------------------------------


def test_upstream_desktop_config_compiles(env: PluginEnv) -> None:
    """Upstream's src/oomd/etc/desktop.json (copied to data/) compiles as it is."""
    compiled = compile_config(load_config(str(DATA / "upstream-desktop.json")), env)
    assert [r.name for r in compiled.engine.rulesets] == [
        "system overview",
        "user session protection",
        "protection against low swap",
    ]
