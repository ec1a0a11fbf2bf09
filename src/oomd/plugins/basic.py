"""``continue`` and ``stop``: constant results, any args accepted and ignored."""

from __future__ import annotations

from oomd.plugin import OomdContext, Plugin, PluginRet


class Continue(Plugin):
    name = "continue"
    accepts_any_args = True

    def run(self, ctx: OomdContext) -> PluginRet:
        return PluginRet.CONTINUE


class Stop(Plugin):
    name = "stop"
    accepts_any_args = True

    def run(self, ctx: OomdContext) -> PluginRet:
        return PluginRet.STOP
