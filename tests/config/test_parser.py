"""JSON text -> ConfigIR (``oomd.config.parser``), read the way upstream's
``JsonConfigParser.cpp`` reads each value: reference section 2.3.

Where upstream aborts (SIGABRT) we expect a ConfigError whose messages name the file
and the ruleset. Cases marked "verified against upstream" were checked with the Debian
oomd 0.5.0 binary's IR dump; the suite does not need the binary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oomd.config.errors import ConfigError
from oomd.config.ir import ConfigIR, DetectorGroupIR, DropInIR, PluginIR, RulesetIR
from oomd.config.parser import load_config, parse_config

SOURCE = "test.json"


def parse(text: str) -> ConfigIR:
    return parse_config(text, SOURCE)


def parse_obj(root: Any) -> ConfigIR:
    return parse(json.dumps(root))


def one_ruleset(**fields: Any) -> RulesetIR:
    """Parse a config with one ruleset made of ``fields`` and return its IR."""
    ir = parse_obj({"rulesets": [fields]})
    assert len(ir.rulesets) == 1
    return ir.rulesets[0]


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        parse(text)
    return excinfo.value.problems


def only_plugin(plugin: Any) -> PluginIR:
    """The IR of ``plugin`` given as the only action of a ruleset."""
    return one_ruleset(name="r", actions=[plugin]).actions[0]


# -- the root ---------------------------------------------------------------------------


def test_null_root_is_an_empty_valid_config() -> None:
    """Reference 2.3: a file containing ``null`` is an empty config (verified against
    upstream: oomd 0.5.0 -c exits 0)."""
    ir = parse("/* nothing */ null // at all\n")
    assert ir.rulesets == ()
    assert ir.prekill_hooks == ()
    assert ir.source == SOURCE


def test_empty_object_root_is_an_empty_valid_config() -> None:
    ir = parse("{}")
    assert ir.rulesets == ()
    assert ir.prekill_hooks == ()


@pytest.mark.parametrize(
    ("text", "kind"), [("[]", "an array"), ('"s"', "a string"), ("1", "a number")]
)
def test_non_object_root_is_a_config_error_naming_the_file(text: str, kind: str) -> None:
    """Reference 2.3: any root but an object or null makes jsoncpp throw (upstream
    aborts); verified against upstream for [], "s" and 1."""
    assert problems_of(text) == [f"{SOURCE}: the top level must be a JSON object, not {kind}"]


def test_json_syntax_error_is_a_config_error_with_file_line_and_column() -> None:
    """Reference 2.6: a JSON syntax error aborts upstream; we name file:line:column."""
    problems = problems_of('{\n  "rulesets": [1,,2]\n}')
    assert len(problems) == 1
    assert problems[0].startswith(f"{SOURCE}:2:18: invalid JSON: ")


def test_unknown_keys_are_ignored_at_every_level() -> None:
    """Reference 2.1: unknown keys are ignored at root, ruleset, plugin and drop-in."""
    ir = parse_obj(
        {
            "comment": "x",
            "rulesets": [
                {
                    "name": "r",
                    "extra": [1],
                    "drop-in": {"bogus": "x"},
                    "actions": [{"name": "continue", "also": {}}],
                }
            ],
        }
    )
    assert ir.rulesets[0].name == "r"
    assert ir.rulesets[0].actions == (PluginIR("continue", {}),)


def test_trailing_content_becomes_a_warning_naming_file_line_and_column() -> None:
    """Reference 2.1: content after the JSON value is ignored by upstream."""
    ir = parse('{"rulesets": []}\n\n  oops')
    assert ir.rulesets == ()
    assert len(ir.warnings) == 1
    assert ir.warnings[0].startswith(f"{SOURCE}:3:3: ")


def test_config_without_trailing_content_has_no_warnings() -> None:
    assert parse('{"rulesets": []} // end\n').warnings == ()


# -- list keys: arrays, objects (sorted by key), scalars --------------------------------


def test_rulesets_given_as_an_object_are_taken_in_sorted_key_order() -> None:
    """Reference 2.3 (quirk): jsoncpp iterates an object's values in sorted key order;
    verified against upstream ({"b": ..., "a": ...} runs "a"'s ruleset first)."""
    ir = parse_obj(
        {
            "rulesets": {
                "b": {"name": "second"},
                "a": {"name": "first"},
                "B": {"name": "zeroth"},
                "10": {"name": "numbers-sort-as-text"},
                "9": {"name": "nine"},
            }
        }
    )
    assert [rs.name for rs in ir.rulesets] == [
        "numbers-sort-as-text",
        "nine",
        "zeroth",
        "first",
        "second",
    ]


def test_detectors_and_actions_given_as_objects_are_taken_in_sorted_key_order() -> None:
    """Reference 2.3; verified against upstream (IR dump lists gy before gz and the
    action under "p" before the one under "q")."""
    rs = one_ruleset(
        name="r",
        detectors={"z": ["gz", {"name": "continue"}], "y": ["gy", {"name": "continue"}]},
        actions={"q": {"name": "stop"}, "p": {"name": "continue"}},
    )
    assert [g.name for g in rs.detector_groups] == ["gy", "gz"]
    assert [a.name for a in rs.actions] == ["continue", "stop"]


@pytest.mark.parametrize("value", [None, 5, "rulesets", True])
def test_scalar_rulesets_value_yields_no_rulesets(value: Any) -> None:
    """Reference 2.3: scalars and null iterate as nothing."""
    assert parse_obj({"rulesets": value}).rulesets == ()


@pytest.mark.parametrize("value", [None, 5, "x"])
def test_scalar_detectors_and_actions_yield_nothing(value: Any) -> None:
    rs = one_ruleset(name="r", detectors=value, actions=value)
    assert rs.detector_groups == ()
    assert rs.actions == ()


# -- rulesets ---------------------------------------------------------------------------


def test_null_ruleset_becomes_a_nameless_ruleset_for_the_compiler_to_reject() -> None:
    """Reference 2.3: a null ruleset is all defaults, i.e. "missing name" later."""
    ir = parse_obj({"rulesets": [None]})
    assert ir.rulesets == (RulesetIR(""),)


@pytest.mark.parametrize(
    ("element", "kind"), [("x", "a string"), (3, "a number"), ([], "an array")]
)
def test_non_object_ruleset_is_a_config_error_naming_file_and_ruleset(
    element: Any, kind: str
) -> None:
    """Reference 2.3: a string/number ruleset element aborts upstream."""
    problems = problems_of(json.dumps({"rulesets": [{"name": "ok"}, element]}))
    assert problems == [f"{SOURCE}: ruleset #2: a ruleset must be an object, not {kind}"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("plain", "plain"), (5, "5"), (-2, "-2"), (1.5, "1.5"), (80.0, "80.0"), (True, "true")],
)
def test_ruleset_name_of_scalar_type_is_stringified_with_asstring(name: Any, expected: str) -> None:
    """Reference 2.3: name is read with asString (verified against upstream: name 1.5
    gives Ruleset=1.5, name true gives Ruleset=true)."""
    assert one_ruleset(name=name).name == expected


def test_null_or_absent_ruleset_name_is_empty() -> None:
    assert one_ruleset(name=None).name == ""
    assert one_ruleset().name == ""


@pytest.mark.parametrize(("name", "kind"), [([], "an array"), ({}, "an object")])
def test_ruleset_name_of_array_or_object_is_a_config_error(name: Any, kind: str) -> None:
    """Reference 2.3: asString on an object/array throws (upstream aborts)."""
    problems = problems_of(json.dumps({"rulesets": [{"name": name}]}))
    assert problems == [f'{SOURCE}: ruleset #1: "name" must be a string, not {kind}']


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("silence-logs", "silence_logs"),
        ("post_action_delay", "post_action_delay"),
        ("prekill_hook_timeout", "prekill_hook_timeout"),
        ("cgroup", "cgroup"),
        ("xattr_filter", "xattr_filter"),
    ],
)
@pytest.mark.parametrize(
    ("value", "expected"),
    [("10", "10"), (10, "10"), (10.0, "10.0"), (True, "true"), (None, ""), ("", "")],
)
def test_ruleset_string_fields_are_read_with_asstring(
    key: str, field: str, value: Any, expected: str
) -> None:
    """Reference 2.3: "post_action_delay": 10 and "10" are the same; null is ""."""
    rs = one_ruleset(name="r", **{key: value})
    assert getattr(rs, field) == expected


@pytest.mark.parametrize("key", ["silence-logs", "post_action_delay", "prekill_hook_timeout"])
def test_ruleset_string_field_of_array_type_is_a_config_error_naming_the_key(key: str) -> None:
    """Reference 2.3: arrays/objects abort upstream."""
    problems = problems_of(json.dumps({"rulesets": [{"name": "r", key: ["x"]}]}))
    assert problems == [
        f'{SOURCE}: ruleset "r": "{key}" must be a string, number or bool, not an array'
    ]


def test_absent_ruleset_fields_default_to_empty() -> None:
    assert one_ruleset(name="r") == RulesetIR("r")


# -- drop-in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (None, False),
        (2, True),
        (-1, True),
        (0, False),
        (0.0, False),
        (0.5, True),
    ],
)
def test_dropin_flag_is_read_with_asbool(value: Any, expected: bool) -> None:
    """Reference 2.3: asBool: bools, null is false, numbers nonzero are true
    (verified against upstream: "detectors": 2 dumps Detectors=1)."""
    rs = one_ruleset(
        name="r",
        **{"drop-in": {"disable-on-drop-in": value, "detectors": value, "actions": value}},
    )
    assert rs.dropin == DropInIR(expected, expected, expected)


def test_absent_or_null_dropin_is_all_false() -> None:
    assert one_ruleset(name="r").dropin == DropInIR()
    assert one_ruleset(name="r", **{"drop-in": None}).dropin == DropInIR()


def test_dropin_flags_are_independent() -> None:
    rs = one_ruleset(name="r", **{"drop-in": {"detectors": True, "actions": False}})
    assert rs.dropin == DropInIR(disable_on_drop_in=False, detectors=True, actions=False)


@pytest.mark.parametrize("flag", ["disable-on-drop-in", "detectors", "actions"])
def test_string_dropin_flag_is_a_config_error_naming_ruleset_and_flag(flag: str) -> None:
    """Reference 2.3 (quirk): a string drop-in flag, even "true", makes jsoncpp throw
    (verified against upstream: "Value is not convertible to bool", exit 134)."""
    problems = problems_of(json.dumps({"rulesets": [{"name": "r", "drop-in": {flag: "true"}}]}))
    assert problems == [
        f'{SOURCE}: ruleset "r": "drop-in" "{flag}" must be true or false, not a string'
    ]


@pytest.mark.parametrize(
    ("value", "kind"), [("yes", "a string"), ([], "an array"), (1, "a number")]
)
def test_non_object_dropin_is_a_config_error(value: Any, kind: str) -> None:
    """Reference 2.3: drop-in must be an object or absent/null; anything else aborts."""
    problems = problems_of(json.dumps({"rulesets": [{"name": "r", "drop-in": value}]}))
    assert problems == [f'{SOURCE}: ruleset "r": "drop-in" must be an object, not {kind}']


# -- detector groups -----------------------------------------------------------------------


def test_detector_group_first_string_is_its_name_and_the_rest_its_detectors() -> None:
    rs = one_ruleset(
        name="r",
        detectors=[["g", {"name": "continue"}, {"name": "stop", "args": {"a": "1"}}]],
    )
    assert rs.detector_groups == (
        DetectorGroupIR("g", (PluginIR("continue", {}), PluginIR("stop", {"a": "1"}))),
    )


def test_detector_group_whose_first_element_is_not_a_string_gets_an_empty_name() -> None:
    """Reference 2.3: element 0, if not a string, is parsed as a detector and the
    group name stays empty (verified against upstream: DetectorGroup= with the
    continue detector under it)."""
    rs = one_ruleset(name="r", detectors=[[{"name": "continue"}, {"name": "stop"}]])
    assert rs.detector_groups == (
        DetectorGroupIR("", (PluginIR("continue", {}), PluginIR("stop", {}))),
    )


@pytest.mark.parametrize("group", [{"name": "continue"}, "g", 5, None, []])
def test_detector_group_that_is_not_a_non_empty_array_is_an_empty_group(group: Any) -> None:
    """Reference 2.3: a non-array group becomes an empty group ("DetectorGroup is
    missing name" at compile time)."""
    rs = one_ruleset(name="r", detectors=[group])
    assert rs.detector_groups == (DetectorGroupIR("", ()),)


def test_later_string_in_detector_group_is_a_nameless_plugin() -> None:
    """Reference 2.3: a later string element becomes a nameless plugin."""
    rs = one_ruleset(name="r", detectors=[["g", "oops", {"name": "continue"}]])
    assert rs.detector_groups[0].detectors == (PluginIR("", {}), PluginIR("continue", {}))


def test_detector_group_with_only_a_name_has_no_detectors() -> None:
    rs = one_ruleset(name="r", detectors=[["lonely"]])
    assert rs.detector_groups == (DetectorGroupIR("lonely", ()),)


# -- plugins and args -----------------------------------------------------------------------


@pytest.mark.parametrize("plugin", ["continue", 5, None, ["continue"]])
def test_non_object_plugin_is_nameless(plugin: Any) -> None:
    """Reference 2.3: a non-object plugin is a nameless plugin."""
    assert only_plugin(plugin) == PluginIR("", {})


@pytest.mark.parametrize("name", [5, True, None, ["continue"], {"n": "continue"}])
def test_plugin_name_that_is_not_a_json_string_is_empty(name: Any) -> None:
    """Reference 2.3: a plugin's name must be a JSON string, else it is nameless
    (unlike a ruleset name, it is not stringified)."""
    assert only_plugin({"name": name, "args": {"a": "1"}}) == PluginIR("", {"a": "1"})


@pytest.mark.parametrize("args", [None, "a=1", 5, ["a", "1"]])
def test_plugin_args_that_are_not_an_object_mean_no_args(args: Any) -> None:
    """Reference 2.3: args must be an object, else the plugin has no args."""
    assert only_plugin({"name": "continue", "args": args}) == PluginIR("continue", {})


def test_arg_values_are_stringified_with_asstring() -> None:
    """Reference 2.3 (verified against upstream for each of these values)."""
    plugin = only_plugin(
        {
            "name": "continue",
            "args": {
                "real": 0.1,
                "whole_real": 80.0,
                "big_real": 1e20,
                "half": 80.5,
                "int": -5,
                "yes": True,
                "no": False,
                "text": "x y",
            },
        }
    )
    assert plugin.args == {
        "real": "0.10000000000000001",
        "whole_real": "80.0",
        "big_real": "1e+20",
        "half": "80.5",
        "int": "-5",
        "yes": "true",
        "no": "false",
        "text": "x y",
    }
    assert plugin.bad_args == ()


def test_lenient_json_numbers_reach_args_as_jsoncpp_prints_them() -> None:
    """Verified against upstream: 01 -> "1", +1 -> "1.0", 1. -> "1.0", lone - -> "0"."""
    ir = parse(
        '{"rulesets":[{"name":"r","actions":[{"name":"continue",'
        '"args":{"a":01,"b":+1,"c":1.,"d":-}}]}]}'
    )
    assert ir.rulesets[0].actions[0].args == {"a": "1", "b": "1.0", "c": "1.0", "d": "0"}


def test_duplicate_arg_keys_keep_the_last_value() -> None:
    """Reference 2.1; verified against upstream ("k":1,"k":2 dumps k=2)."""
    ir = parse('{"rulesets":[{"name":"r","actions":[{"name":"continue","args":{"k":1,"k":2}}]}]}')
    assert ir.rulesets[0].actions[0].args == {"k": "2"}


def test_null_array_and_object_args_are_recorded_as_bad_args_in_sorted_order() -> None:
    """Reference 2.3 (quirk): upstream silently drops such an arg and every arg sorting
    after it (verified: args a, b, c=null, d dump only a and b). We record the bad ones
    (ir.PluginIR.bad_args) so the compiler can reject them, and keep the others."""
    plugin = only_plugin(
        {"name": "continue", "args": {"d": "y", "c": None, "b": "x", "a": 1, "e": [[1]], "f": {}}}
    )
    assert plugin.args == {"a": "1", "b": "x", "d": "y"}
    assert plugin.bad_args == ("c", "e", "f")


def test_arrays_of_scalars_are_kept_as_list_args() -> None:
    """Our extension for list-valued args (the exec prekill hook's argv); the
    compiler rejects them for every arg not declared to take a list."""
    plugin = only_plugin({"name": "continue", "args": {"argv": ["/bin/echo", 1, True]}})
    assert plugin.list_args == {"argv": ("/bin/echo", "1", "true")}
    assert plugin.bad_args == ()


# -- prekill hooks ------------------------------------------------------------------------


def test_prekill_hooks_are_parsed_as_plugins() -> None:
    ir = parse_obj({"prekill_hooks": [{"name": "hook", "args": {"cgroup": "x", "n": 1}}, "bad"]})
    assert ir.prekill_hooks == (PluginIR("hook", {"cgroup": "x", "n": "1"}), PluginIR("", {}))


def test_prekill_hooks_given_as_an_object_are_taken_in_sorted_key_order() -> None:
    ir = parse_obj({"prekill_hooks": {"b": {"name": "second"}, "a": {"name": "first"}}})
    assert [h.name for h in ir.prekill_hooks] == ["first", "second"]


# -- problems, files ----------------------------------------------------------------------


def test_every_parse_problem_is_reported_at_once_each_naming_file_and_ruleset() -> None:
    problems = problems_of(
        json.dumps(
            {
                "rulesets": [
                    {"name": "one", "drop-in": {"actions": "yes"}},
                    "two",
                    {"name": "three", "silence-logs": {}},
                ]
            }
        )
    )
    assert problems == [
        f'{SOURCE}: ruleset "one": "drop-in" "actions" must be true or false, not a string',
        f"{SOURCE}: ruleset #2: a ruleset must be an object, not a string",
        f'{SOURCE}: ruleset "three": "silence-logs" must be a string, number or bool, not an object',
    ]


def test_config_error_message_joins_all_problems() -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_obj({"rulesets": ["a", "b"]})
    assert str(excinfo.value) == "\n".join(excinfo.value.problems)
    assert len(excinfo.value.problems) == 2


def test_default_source_name_is_used_when_none_is_given() -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_config("[]")
    assert excinfo.value.problems[0].startswith("<config>: ")


def test_load_config_reads_a_file_and_names_it_in_problems(tmp_path: Path) -> None:
    path = tmp_path / "oomd.json"
    path.write_text('{"rulesets": [{"name": "r", "drop-in": 3}]}')
    with pytest.raises(ConfigError) as excinfo:
        load_config(str(path))
    assert excinfo.value.problems == [
        f'{path}: ruleset "r": "drop-in" must be an object, not a number'
    ]


def test_load_config_accepts_a_utf8_bom_and_records_the_path(tmp_path: Path) -> None:
    """Verified against upstream: a config starting with a UTF-8 BOM loads."""
    path = tmp_path / "bom.json"
    path.write_bytes(b'\xef\xbb\xbf{"rulesets": [{"name": "r\xc3\xa9"}]}')
    ir = load_config(str(path))
    assert ir.source == str(path)
    assert [rs.name for rs in ir.rulesets] == ["r\u00e9"]


def test_unreadable_config_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(ConfigError) as excinfo:
        load_config(str(path))
    assert excinfo.value.problems == [
        f"Could not open confg_file={path} (No such file or directory)"
    ]


def test_ir_dump_lists_what_upstream_logs_after_parsing() -> None:
    """Reference 2.9: the IR dump (cosmetic) shows names, drop-in flags as 0/1, raw
    silence-logs and the stringified args."""
    ir = parse_obj(
        {
            "rulesets": [
                {
                    "name": 1.5,
                    "drop-in": {"detectors": 2},
                    "silence-logs": "engine",
                    "detectors": [["g", {"name": "continue", "args": {"x": 0.1}}]],
                    "actions": [{"name": "stop"}],
                }
            ]
        }
    )
    assert ir.dump() == [
        " 0 PrekillHooks=",
        " 1 Rulesets=",
        "   Ruleset=1.5",
        "     DropIn=",
        "       Detectors=1",
        "       Actions=0",
        "       DisableOnDrop=0",
        "     SilenceLogs=engine",
        "     PostActionDelay=",
        "     PrekillHookTimeout=",
        "     XattrFilter=",
        "     Cgroup=",
        "     DetectorGroup=g",
        "       Detector=continue",
        "         Args=",
        "           x=0.10000000000000001",
        "     Action=stop",
        "       Args=",
    ]
