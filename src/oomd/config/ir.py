"""The typed intermediate form of a config: what the JSON said, before plugins exist.

Immutable records as named tuples (not dataclasses: ``dataclasses`` imports
``inspect`` and ``ast``, 1.3 MiB the daemon does not need; bench/README.md).

Values stay as upstream's parser keeps them (strings; plugin args stringified the
jsoncpp way) so the compiler applies upstream's validation rules in one place.
"""

from __future__ import annotations

from oomd.typeshim import NamedTuple


class PluginIR(NamedTuple):
    name: str
    args: dict[str, str]
    #: Args whose JSON value was null, an object or an array of non-scalars. Upstream
    #: silently drops them (and every arg sorting after them); we reject them.
    bad_args: tuple[str, ...] = ()
    #: Args given as a JSON array of scalars (stringified). Only args declared to take
    #: a list accept them (e.g. the exec prekill hook's argv); others are rejected.
    #: (The default is one shared empty dict: nothing mutates an IR.)
    list_args: dict[str, tuple[str, ...]] = {}


class DropInIR(NamedTuple):
    disable_on_drop_in: bool = False
    detectors: bool = False
    actions: bool = False


class DetectorGroupIR(NamedTuple):
    name: str
    detectors: tuple[PluginIR, ...]


class RulesetIR(NamedTuple):
    name: str
    detector_groups: tuple[DetectorGroupIR, ...] = ()
    actions: tuple[PluginIR, ...] = ()
    dropin: DropInIR = DropInIR()
    silence_logs: str = ""
    post_action_delay: str = ""
    prekill_hook_timeout: str = ""
    cgroup: str = ""
    xattr_filter: str = ""


class ConfigIR(NamedTuple):
    rulesets: tuple[RulesetIR, ...] = ()
    prekill_hooks: tuple[PluginIR, ...] = ()
    #: Where the config came from (a path, or "<default policy>"), for messages.
    source: str = "<config>"
    #: Non-fatal findings of the parser (e.g. ignored trailing content).
    warnings: tuple[str, ...] = ()
    #: ``postkill_hooks`` (our addition; same shape as ``prekill_hooks``).
    postkill_hooks: tuple[PluginIR, ...] = ()
    #: Top-level ``protected_cgroups`` (ours): cgroup patterns no plugin ever kills.
    protected_cgroups: tuple[str, ...] = ()

    def dump(self) -> list[str]:
        """Upstream's IR dump lines (logged after parsing; cosmetic)."""
        lines = [f" {len(self.prekill_hooks)} PrekillHooks="]
        for hook in self.prekill_hooks:
            lines += [f"   Hook={hook.name}", "     Args="]
            lines += [f"       {k}={v}" for k, v in hook.args.items()]
        lines.append(f" {len(self.rulesets)} Rulesets=")
        for rs in self.rulesets:
            lines += [
                f"   Ruleset={rs.name}",
                "     DropIn=",
                f"       Detectors={int(rs.dropin.detectors)}",
                f"       Actions={int(rs.dropin.actions)}",
                f"       DisableOnDrop={int(rs.dropin.disable_on_drop_in)}",
                f"     SilenceLogs={rs.silence_logs}",
                f"     PostActionDelay={rs.post_action_delay}",
                f"     PrekillHookTimeout={rs.prekill_hook_timeout}",
                f"     XattrFilter={rs.xattr_filter}",
                f"     Cgroup={rs.cgroup}",
            ]
            for group in rs.detector_groups:
                lines.append(f"     DetectorGroup={group.name}")
                for det in group.detectors:
                    lines += [f"       Detector={det.name}", "         Args="]
                    lines += [f"           {k}={v}" for k, v in det.args.items()]
            for action in rs.actions:
                lines += [f"     Action={action.name}", "       Args="]
                lines += [f"         {k}={v}" for k, v in action.args.items()]
        return lines
