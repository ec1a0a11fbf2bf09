"""JSON text -> :class:`ConfigIR`, reading each value the way upstream's parser does.

Where upstream's parser throws (and the daemon aborts with SIGABRT) we raise a
:class:`ConfigError` naming the file and the offending key instead.
"""

from __future__ import annotations

from oomd.config import jsonc
from oomd.config.errors import ConfigError
from oomd.config.ir import ConfigIR, DetectorGroupIR, DropInIR, PluginIR, RulesetIR
from oomd.config.jsonc import JsonValue
from oomd.config.suggest import did_you_mean
from oomd.trusted import read_regular

#: The keys upstream reads at each level; any other key is ignored (by upstream too),
#: so we warn about it, naming the closest known key (docs/compatibility.md).
TOP_KEYS = ("rulesets", "prekill_hooks", "postkill_hooks", "protected_cgroups")
RULESET_KEYS = (
    "name",
    "detectors",
    "actions",
    "drop-in",
    "silence-logs",
    "post_action_delay",
    "prekill_hook_timeout",
    "cgroup",
    "xattr_filter",
)
DROPIN_KEYS = ("disable-on-drop-in", "detectors", "actions")
PLUGIN_KEYS = ("name", "args")


def _members(value: JsonValue) -> list[JsonValue]:
    """How upstream iterates a list key: arrays in order, objects by their values in
    sorted key order (a jsoncpp quirk we keep), anything else yields nothing."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value[k] for k in sorted(value)]
    return []


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{self.source}: {where}: {message}")

    def unknown_keys(self, value: dict[str, JsonValue], known: tuple[str, ...], where: str) -> None:
        for key in value:
            if key not in known:
                self.warnings.append(
                    f'{self.source}: {where}: unknown key "{key}" is ignored'
                    + did_you_mean(key, known)
                )

    def scalar_string(self, value: JsonValue, where: str, key: str) -> str:
        if isinstance(value, list | dict):
            self.fail(where, f'"{key}" must be a string, number or bool, not {_kind(value)}')
            return ""
        return jsonc.as_string(value)

    def plugin(self, value: JsonValue, where: str) -> PluginIR:
        if not isinstance(value, dict):
            return PluginIR("", {})
        name = value.get("name")
        if isinstance(name, str) and name:
            where = f'{where}: plugin "{name}"'
        self.unknown_keys(value, PLUGIN_KEYS, where)
        raw_args = value.get("args")
        args: dict[str, str] = {}
        lists: dict[str, tuple[str, ...]] = {}
        bad: list[str] = []
        if isinstance(raw_args, dict):
            for key in sorted(raw_args):
                arg = raw_args[key]
                if isinstance(arg, list) and all(
                    x is not None and not isinstance(x, list | dict) for x in arg
                ):
                    lists[key] = tuple(jsonc.as_string(x) for x in arg)
                elif arg is None or isinstance(arg, list | dict):
                    bad.append(key)
                else:
                    args[key] = jsonc.as_string(arg)
        return PluginIR(name if isinstance(name, str) else "", args, tuple(bad), lists)

    def group(self, value: JsonValue, where: str, index: int) -> DetectorGroupIR:
        if not isinstance(value, list) or not value:
            return DetectorGroupIR("", ())
        first, rest = value[0], value[1:]
        name = first if isinstance(first, str) else ""
        members = rest if isinstance(first, str) else value
        g_where = (
            f'{where}: detector group "{name}"' if name else f"{where}: detector group #{index + 1}"
        )
        return DetectorGroupIR(
            name,
            tuple(self.plugin(v, f"{g_where}: detector #{i + 1}") for i, v in enumerate(members)),
        )

    def dropin(self, value: JsonValue, where: str) -> DropInIR:
        if value is None:
            return DropInIR()
        if not isinstance(value, dict):
            self.fail(where, f'"drop-in" must be an object, not {_kind(value)}')
            return DropInIR()
        self.unknown_keys(value, DROPIN_KEYS, f'{where}: "drop-in"')

        def flag(key: str) -> bool:
            v = value.get(key)
            if v is None:
                return False
            if isinstance(v, bool):
                return v
            if isinstance(v, int | float):
                return v != 0
            self.fail(where, f'"drop-in" "{key}" must be true or false, not {_kind(v)}')
            return False

        return DropInIR(flag("disable-on-drop-in"), flag("detectors"), flag("actions"))

    def ruleset(self, value: JsonValue, index: int) -> RulesetIR | None:
        where = f"ruleset #{index + 1}"
        if value is None:
            return RulesetIR("")
        if not isinstance(value, dict):
            self.fail(where, f"a ruleset must be an object, not {_kind(value)}")
            return None
        name = value.get("name")
        if isinstance(name, list | dict):
            self.fail(where, f'"name" must be a string, not {_kind(name)}')
            name = ""
        name_text = jsonc.as_string(name)
        if name_text:
            where = f'ruleset "{name_text}"'
        self.unknown_keys(value, RULESET_KEYS, where)

        def text(key: str) -> str:
            return self.scalar_string(value.get(key), where, key)

        return RulesetIR(
            name=name_text,
            detector_groups=tuple(
                self.group(g, where, i) for i, g in enumerate(_members(value.get("detectors")))
            ),
            actions=tuple(
                self.plugin(a, f"{where}: action #{i + 1}")
                for i, a in enumerate(_members(value.get("actions")))
            ),
            dropin=self.dropin(value.get("drop-in"), where),
            silence_logs=text("silence-logs"),
            post_action_delay=text("post_action_delay"),
            prekill_hook_timeout=text("prekill_hook_timeout"),
            cgroup=text("cgroup"),
            xattr_filter=text("xattr_filter"),
        )


def _kind(value: JsonValue) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number" if not isinstance(value, bool) else "a bool"


def parse_config(text: str, source: str = "<config>") -> ConfigIR:
    """Parse config text; raises ConfigError (with line and column for JSON syntax)."""
    try:
        result = jsonc.parse(text)
    except jsonc.JsonError as e:
        raise ConfigError([f"{source}:{e.line}:{e.column}: invalid JSON: {e.message}"]) from None
    warnings: list[str] = []
    if result.trailing is not None:
        line, column = result.trailing
        warnings.append(
            f"{source}:{line}:{column}: content after the end of the JSON value is ignored (as upstream)"
        )
    root = result.value
    if root is None:
        return ConfigIR(source=source, warnings=tuple(warnings))
    if not isinstance(root, dict):
        raise ConfigError([f"{source}: the top level must be a JSON object, not {_kind(root)}"])
    parser = _Parser(source)
    parser.unknown_keys(root, TOP_KEYS, "top level")
    rulesets = []
    for i, value in enumerate(_members(root.get("rulesets"))):
        rs = parser.ruleset(value, i)
        if rs is not None:
            rulesets.append(rs)
    hooks = tuple(
        parser.plugin(h, f"prekill hook #{i + 1}")
        for i, h in enumerate(_members(root.get("prekill_hooks")))
    )
    postkill = tuple(
        parser.plugin(h, f"postkill hook #{i + 1}")
        for i, h in enumerate(_members(root.get("postkill_hooks")))
    )
    protected = _protected(parser, root.get("protected_cgroups"))
    if parser.problems:
        raise ConfigError(parser.problems)
    return ConfigIR(
        tuple(rulesets),
        hooks,
        source,
        tuple(warnings + parser.warnings),
        postkill_hooks=postkill,
        protected_cgroups=protected,
    )


def _protected(parser: _Parser, value: JsonValue) -> tuple[str, ...]:
    """``protected_cgroups`` (ours): an array of cgroup patterns (or one string of
    comma-separated patterns, as a plugin's ``cgroup``)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(str(v) for v in value)
    parser.fail(
        "top level",
        f'"protected_cgroups" must be an array of cgroup patterns (strings), not {_kind(value)}',
    )
    return ()


def load_config(path: str) -> ConfigIR:
    """Read and parse a config file; ConfigError if it cannot be read or parsed."""
    try:
        data = read_regular(path)
    except OSError as e:
        raise ConfigError(
            [f"Could not open confg_file={path} ({e.strerror})"]
        ) from None  # sic, upstream's words
    return parse_config(data.decode("utf-8", errors="replace"), path)
