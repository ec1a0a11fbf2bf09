"""The built-in default policy is upstream's desktop example, plugin for plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from oomd import cli
from oomd.config.compiler import compile_config
from oomd.config.default_policy import default_policy, default_policy_text
from oomd.config.parser import load_config
from oomd.engine.plugin import PluginEnv

DESKTOP = Path(__file__).parent / "data" / "upstream-desktop.json"


def test_default_policy_is_upstreams_desktop_json() -> None:
    ours = default_policy()
    upstream = load_config(str(DESKTOP))
    assert ours.rulesets == upstream.rulesets
    assert ours.prekill_hooks == upstream.prekill_hooks


def test_default_policy_compiles(env: PluginEnv) -> None:
    compiled = compile_config(default_policy(), env)
    assert [r.name for r in compiled.engine.rulesets] == [
        "system overview",
        "user session protection",
        "protection against low swap",
    ]


def test_default_policy_ships_as_a_commented_file_and_is_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = default_policy_text()
    assert text.startswith("// oomd's built-in default policy")
    assert "\n      // Kill the biggest swap user" in text
    assert cli.main(["--print-default-config"]) == 0
    assert capsys.readouterr().out == text


def test_the_package_file_is_the_policy_the_daemon_runs(tmp_path: Path) -> None:
    """One source: the file in the package is what ``default_policy()`` parses."""
    import oomd

    shipped = Path(oomd.__file__).parent / "etc" / "oomd.json"
    assert shipped.read_text() == default_policy_text()
    assert load_config(str(shipped)).rulesets == default_policy().rulesets
