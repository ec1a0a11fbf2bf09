"""``continue`` and ``stop``: constant results, any args accepted and ignored."""

from __future__ import annotations

from oomd.plugin import OomdContext, Plugin, PluginRet
from oomd.typeshim import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


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
