"""The public plugin API (``oomd.plugin``): what it exports, that the built-in plugins
use exactly it, declarative args with validators, and upstream-quality messages."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

import oomd.plugin as api
from oomd import testing
from oomd.config.errors import ConfigError
from oomd.plugins import registry
from tests.support.harness import Harness

PLUGINS_DIR = Path(api.__file__).parent / "plugins"

#: Modules under oomd/plugins that implement the API or the registry, not plugins.
NOT_PLUGINS = {"__init__.py", "registry.py", "prekill_hooks.py", "postkill_hooks.py"}
#: Internal modules whose plugin-facing names oomd.plugin re-exports.
CONTRACT_MODULES = {
    "oomd.engine.plugin",
    "oomd.engine.args",
    "oomd.engine.kill_base",
    "oomd.engine.timer",
    "oomd.cgroup.context",
    "oomd.cgroup.path",
}


def test_every_public_name_exists() -> None:
    assert len(set(api.__all__)) == len(api.__all__)
    for name in api.__all__:
        assert hasattr(api, name), name
    assert issubclass(api.Detector, api.Plugin) and issubclass(api.Action, api.Plugin)
    assert issubclass(api.KillPlugin, api.Action)


def test_builtin_plugins_use_only_the_public_api_for_the_contract() -> None:
    """No private side door: plugin modules import the contract from oomd.plugin."""
    checked = 0
    for path in sorted(PLUGINS_DIR.glob("*.py")):
        if path.name in NOT_PLUGINS:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in CONTRACT_MODULES, f"{path.name} imports {node.module}"
        checked += 1
    assert checked >= 15


@pytest.mark.parametrize("name", registry.names())
def test_builtin_plugins_derive_from_the_public_base_classes(name: str) -> None:
    cls = registry.get(name)
    assert cls is not None
    if name.startswith("kill_by_"):
        assert issubclass(cls, api.KillPlugin)
    elif name in ("continue", "stop"):
        assert not issubclass(cls, (api.Detector, api.Action))  # either place, as upstream
    elif name in ("dump_cgroup_overview", "kernel_panic", "senpai", "systemd_restart"):
        assert issubclass(cls, api.Action)
    else:
        assert issubclass(cls, api.Detector)


# -- validators ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("validator", "value", "message"),
    [
        (api.in_range(0, 100), 150, "must be between 0 and 100, not 150"),
        (api.in_range(0, 100), -1, "must be between 0 and 100, not -1"),
        (api.in_range(0.5), 0.25, "must be at least 0.5, not 0.25"),
        (api.in_range(hi=10), 11, "must be at most 10, not 11"),
        (api.in_range(0, 1), math.nan, "must be between 0 and 1, not nan"),
        (api.positive, 0, "must be positive, not 0"),
        (api.non_negative, -0.5, "must be non-negative, not -0.5"),
        (api.one_of("memory", "io"), "cpu", "must be one of 'memory', 'io', not 'cpu'"),
    ],
)
def test_validators_say_what_was_expected_and_what_was_given(
    validator: Callable[[Any], object], value: object, message: str
) -> None:
    with pytest.raises(ValueError) as excinfo:
        validator(value)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("validator", "value"),
    [
        (api.in_range(0, 100), 0),
        (api.in_range(0, 100), 100),
        (api.positive, 1),
        (api.non_negative, 0),
        (api.one_of("memory", "io"), "io"),
    ],
)
def test_validators_accept_valid_values(validator: Callable[[Any], object], value: object) -> None:
    validator(value)


class Checked(api.Detector):
    name = "checked"
    cgroup: tuple[api.CgroupPattern, ...] = api.arg(api.parse_cgroups, default=())
    percent: int = api.arg(api.parse_int, default=200, validate=api.in_range(1, 100))
    mode: str = api.arg(api.parse_string, default="fast", validate=api.one_of("fast", "slow"))

    def setup(self) -> None:
        api.require_cgroups(self)

    def detect(self, ctx: api.OomdContext) -> bool:
        return self.percent > 50


def test_arg_validation_errors_name_file_ruleset_group_plugin_and_arg(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        registry._external, "checked", registry.External("checked", "test", cls=Checked)
    )
    problems = harness.problems("checked", cgroup="w", percent="0", mode="medium")
    assert problems == [
        'test.json: ruleset "r": detector group "g": detector #1: plugin "checked": '
        "arg \"mode\": must be one of 'fast', 'slow', not 'medium'",
        'test.json: ruleset "r": detector group "g": detector #1: plugin "checked": '
        'arg "percent": must be between 1 and 100, not 0',
    ]
    # Defaults are not validated (the plugin author chose them).
    detector = harness.detector("checked", cgroup="w")
    assert isinstance(detector, Checked) and detector.percent == 200
    assert detector.origin == "test"


def test_a_buggy_parser_or_setup_is_a_config_error_not_a_crash(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(value: str, env: api.PluginEnv) -> int:
        raise TypeError("parser bug")

    class Buggy(api.Detector):
        name = "buggy"
        x: int = api.arg(explode, default=0)

        def setup(self) -> None:
            getattr(self, "missing_attribute_access")  # noqa: B009 - the bug under test

    monkeypatch.setitem(registry._external, "buggy", registry.External("buggy", "test", cls=Buggy))
    [problem] = harness.problems("buggy", x="1")
    assert problem.startswith(
        'test.json: ruleset "r": detector group "g": detector #1: plugin "buggy": '
        "arg \"x\": '1' could not be parsed: TypeError: parser bug (test_plugin_api.py:"
    )
    [problem] = harness.problems("buggy")
    assert "plugin \"buggy\": failed to init: AttributeError: 'Buggy' object has no attribute" in (
        problem
    )


def test_build_plugin_builds_like_a_config_would(tmp_path: Path) -> None:
    env = api.PluginEnv(cgroup_fs=str(tmp_path))
    plugin = testing.build_plugin(Checked, {"cgroup": "a,b/*", "percent": "80"}, env)
    assert isinstance(plugin, Checked)
    assert plugin.percent == 80 and plugin.provided == {"cgroup", "percent"}
    with pytest.raises(ConfigError) as excinfo:
        testing.build_plugin(Checked, {"percent": "80"}, env)
    assert excinfo.value.problems == [
        '<args>: build_plugin: plugin "checked": arg "cgroup": '
        'Required arg "cgroup" missing (or give "ruleset_cgroup")'
    ]


def test_an_arg_named_like_a_plugin_attribute_is_refused(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Shadows(api.Detector):
        name = "shadows"
        origin: str | None = api.arg(api.parse_string)

    monkeypatch.setitem(
        registry._external, "shadows", registry.External("shadows", "test", cls=Shadows)
    )
    assert harness.problems("shadows") == [
        'test.json: ruleset "r": detector group "g": detector #1: plugin "shadows": the plugin '
        'declares an arg "origin", which would replace Plugin.origin; the plugin must rename it'
    ]


# -- declaring args: arg() once per arg, the old args tuple deprecated ---------------------


@pytest.mark.parametrize(
    ("name", "get"),
    [(name, registry.get) for name in registry.names()]
    + [(name, registry.get_hook) for name in sorted(registry.HOOKS)],
)
def test_every_builtin_is_registered_under_its_class_name(
    name: str, get: Callable[[str], type[api.Plugin] | None]
) -> None:
    cls = get(name)
    assert cls is not None
    assert cls.name == name
    for a in cls.args:
        assert not hasattr(cls, a.name), f"{name}: the class still holds {a.name}'s declaration"


def test_builtin_plugins_declare_each_arg_once_not_in_an_args_tuple() -> None:
    """The deprecated ``args = (Arg(...), ...)`` form appears in no built-in plugin,
    the kill base or the prekill hook base."""
    engine = PLUGINS_DIR.parent / "engine"
    paths = [*sorted(PLUGINS_DIR.glob("*.py")), engine / "kill_base.py", engine / "prekill.py"]
    declared = 0
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            for statement in node.body:
                targets = (
                    [statement.target]
                    if isinstance(statement, (ast.AnnAssign, ast.AugAssign))
                    else statement.targets
                    if isinstance(statement, ast.Assign)
                    else []
                )
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                assert "args" not in names, f"{path.name}: class {node.name} lists args"
                if isinstance(statement, ast.AnnAssign) and isinstance(statement.value, ast.Call):
                    func = statement.value.func
                    declared += isinstance(func, ast.Name) and func.id == "arg"
    assert declared >= 60


def test_kill_plugins_take_the_kill_args_first_then_their_own() -> None:
    cls = registry.get("kill_by_swap_usage")
    assert cls is not None
    assert [a.name for a in cls.args] == [
        "cgroup",
        "ruleset_cgroup",
        "recursive",
        "post_action_delay",
        "dry",
        "always_continue",
        "debug",
        "kernelkill",
        "reap_memory",
        "log_kmemalloc_prekill",
        "kill_signal",
        "grace_period",
        "prefer",
        "avoid",
        "kill_mode",
        "threshold",
        "biased_swap_kill",
        "meminfo_location",
    ]
    assert cls.args[: len(api.KILL_ARGS)] == api.KILL_ARGS == api.KillPlugin.args


def test_arg_names_the_attribute_and_keeps_order_through_inheritance() -> None:
    class Base(api.Detector):
        name = "base"
        first: int = api.arg(api.parse_int, default=1)
        second: bool = api.arg(api.parse_bool, required=True, doc="the second")

    class Derived(Base):
        name = "derived"
        third: str = api.arg(api.parse_string, default="x")
        first: int = api.arg(api.parse_int, default=2, validate=api.positive)

    assert Base.args == (
        api.Arg("first", api.parse_int, default=1),
        api.Arg("second", api.parse_bool, required=True, doc="the second"),
    )
    # A re-declared arg keeps its place; new ones follow the inherited ones.
    assert [(a.name, a.default) for a in Derived.args] == [
        ("first", 2),
        ("second", None),
        ("third", "x"),
    ]
    assert Derived.args[0].validate is api.positive
    # The declaration leaves the class: an instance holds the parsed value.
    assert not hasattr(Base, "first") and not hasattr(Derived, "third")


def test_arg_values_reach_the_instance(tmp_path: Path) -> None:
    env = api.PluginEnv(cgroup_fs=str(tmp_path))
    plugin = testing.build_plugin(Checked, {"cgroup": "a", "mode": "slow"}, env)
    assert isinstance(plugin, Checked)
    assert (plugin.percent, plugin.mode) == (200, "slow")
    assert [p.text for p in plugin.cgroup] == ["a"]


def test_an_arg_without_annotation_or_in_both_forms_is_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match=r"Bare\.n = arg\(\.\.\.\) needs a type annotation"):

        class Bare(api.Detector):
            n = api.arg(api.parse_int)

    with pytest.raises(TypeError, match="both in an `args` tuple and with arg"):

        class Both(api.Detector):
            args: ClassVar[tuple[api.Arg[Any], ...]] = (api.Arg("a", api.parse_int),)
            b: int = api.arg(api.parse_int)


def test_the_old_args_tuple_still_works_with_a_deprecation_warning(tmp_path: Path) -> None:
    with pytest.warns(
        DeprecationWarning, match="`args = \\(Arg\\(...\\), ...\\)` is deprecated"
    ) as w:

        class Legacy(api.KillPlugin):
            name = "legacy"
            args: ClassVar[tuple[api.Arg[Any], ...]] = (
                *api.KILL_ARGS,
                api.Arg("limit", api.parse_int, required=True, validate=api.positive),
            )
            limit: int

            def rank(
                self, ctx: api.OomdContext, cgroups: list[api.CgroupContext]
            ) -> list[api.CgroupContext]:
                return cgroups

    assert w[0].filename == __file__  # points at the class statement
    assert [a.name for a in Legacy.args][-2:] == ["kill_mode", "limit"]
    env = api.PluginEnv(cgroup_fs=str(tmp_path))
    plugin = testing.build_plugin(Legacy, {"cgroup": "w/*", "limit": "3"}, env)
    assert isinstance(plugin, Legacy) and plugin.limit == 3 and plugin.reap_memory is True
    with pytest.raises(ConfigError) as excinfo:
        testing.build_plugin(Legacy, {"cgroup": "w/*", "limit": "0"}, env)
    assert excinfo.value.problems == [
        '<args>: build_plugin: plugin "legacy": arg "limit": must be positive, not 0'
    ]


def test_arg_and_size_or_percent_are_immutable_values() -> None:
    a = api.Arg("n", api.parse_int, default=1)
    assert a == api.Arg("n", api.parse_int, default=1) and hash(a) == hash(
        api.Arg("n", api.parse_int, default=1)
    )
    assert a != api.Arg("n", api.parse_int, default=2)
    with pytest.raises(AttributeError):
        a.name = "m"
    size = api.SizeOrPercent("50%", percent=50)
    assert size == api.SizeOrPercent("50%", percent=50) != api.SizeOrPercent("50%", size=50)
    assert repr(size) == "SizeOrPercent(text='50%', size=None, percent=50)"
    with pytest.raises(AttributeError):
        size.percent = 3
