"""Helpers for testing plugins: build one exactly as a config naming it would.

Not part of the daemon's import path and not the plugin API (:mod:`oomd.plugin`): it
sits above the config compiler, which a plugin must never import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from oomd.config.compiler import build_plugin as _build
from oomd.config.errors import ConfigError
from oomd.engine.plugin import Plugin, PluginEnv

__all__ = ["ConfigError", "build_plugin"]


def build_plugin(
    cls: type[Plugin], args: Mapping[str, str | Sequence[str]], env: PluginEnv
) -> Plugin:
    """Build one plugin exactly as a config naming it with ``args`` would: every arg
    parsed and validated, ``setup`` run. Values are strings, as in a config (a sequence
    of strings for an arg that takes a list). Raises ConfigError whose ``problems`` hold
    the messages a config would get."""
    return _build(cls, args, env)
