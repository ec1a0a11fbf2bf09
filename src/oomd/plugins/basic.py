"""``continue`` and ``stop``: constant results, any args accepted and ignored."""

from __future__ import annotations

from typing import Any

from oomd.plugin import OomdContext, Plugin, PluginRet


class Continue(Plugin):
    name = "continue"
    accepts_any_args = True

    def run(self, ctx: OomdContext) -> PluginRet:
        return PluginRet.CONTINUE

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        return {"description": "always continues", "over": True}


class Stop(Plugin):
    name = "stop"
    accepts_any_args = True

    def run(self, ctx: OomdContext) -> PluginRet:
        return PluginRet.STOP

    def explain(self, ctx: OomdContext) -> dict[str, Any]:
        return {"description": "always stops", "over": False}
