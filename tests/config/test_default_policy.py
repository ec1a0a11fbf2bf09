"""The built-in default policy is upstream's desktop example, plugin for plugin."""

from __future__ import annotations

from pathlib import Path

from oomd.config.compiler import compile_config
from oomd.config.default_policy import DEFAULT_POLICY_NAME, DEFAULT_POLICY_TEXT
from oomd.config.parser import load_config, parse_config
from oomd.engine.plugin import PluginEnv

DESKTOP = Path(__file__).parent / "data" / "upstream-desktop.json"


def test_default_policy_is_upstreams_desktop_json() -> None:
    ours = parse_config(DEFAULT_POLICY_TEXT, DEFAULT_POLICY_NAME)
    upstream = load_config(str(DESKTOP))
    assert ours.rulesets == upstream.rulesets
    assert ours.prekill_hooks == upstream.prekill_hooks


def test_default_policy_compiles(env: PluginEnv) -> None:
    compiled = compile_config(parse_config(DEFAULT_POLICY_TEXT, DEFAULT_POLICY_NAME), env)
    assert [r.name for r in compiled.engine.rulesets] == [
        "system overview",
        "user session protection",
        "protection against low swap",
    ]
