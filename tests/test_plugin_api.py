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
    args: ClassVar[tuple[api.Arg[Any], ...]] = (
        api.CGROUP_ARG,
        api.Arg("percent", api.parse_int, default=200, validate=api.in_range(1, 100)),
        api.Arg("mode", api.parse_string, default="fast", validate=api.one_of("fast", "slow")),
    )
    percent: int

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
        args: ClassVar[tuple[api.Arg[Any], ...]] = (api.Arg("x", explode, default=0),)

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
        args: ClassVar[tuple[api.Arg[Any], ...]] = (api.Arg("origin", api.parse_string),)

    monkeypatch.setitem(
        registry._external, "shadows", registry.External("shadows", "test", cls=Shadows)
    )
    assert harness.problems("shadows") == [
        'test.json: ruleset "r": detector group "g": detector #1: plugin "shadows": the plugin '
        'declares an arg "origin", which would replace Plugin.origin; the plugin must rename it'
    ]
