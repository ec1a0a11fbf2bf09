"""The jsoncpp-compatible JSON reader (``oomd.config.jsonc``).

Upstream oomd reads its config with jsoncpp 1.9.5 (``CharReaderBuilder``, comments
allowed, otherwise default settings): reference section 2.1. Arg values reach plugins
stringified by jsoncpp's ``Value::asString``: reference section 2.3.

The tables marked "verified against upstream" were produced by running the Debian
oomd 0.5.0 binary (``oomd -c FILE --kmsg-override K``) on configs whose ``continue``
plugin had the literal as its only arg, and reading the value back from the IR dump
(``x=...``) or the exit status (134 = SIGABRT on a JSON syntax error). The suite does
not need the binary: the results are written down here.
"""

from __future__ import annotations

import pytest

from oomd.config import jsonc
from oomd.config.jsonc import JsonError, JsonValue, as_string, parse


def arg_string(literal: str) -> str:
    """What a plugin gets for ``"args": {"x": <literal>}``."""
    value = parse('{"x": ' + literal + "}").value
    assert isinstance(value, dict)
    return as_string(value["x"])


# -- numbers and asString: verified against upstream ---------------------------------

# Source: the Debian oomd 0.5.0 binary's IR dump (see module docstring); jsoncpp 1.9.5
# OurReader::decodeNumber/decodeDouble and Value::asString (valueToString, "%.17g").
UPSTREAM_ARG_STRINGS: list[tuple[str, str]] = [
    ("0.1", "0.10000000000000001"),
    ("80.0", "80.0"),
    ("80.5", "80.5"),
    ("100.0", "100.0"),
    ("1e20", "1e+20"),
    ("1e21", "1e+21"),
    ("1e16", "10000000000000000.0"),
    ("1e15", "1000000000000000.0"),
    ("1E5", "100000.0"),
    ("1e+5", "100000.0"),
    ("1.e5", "100000.0"),
    ("-1e5", "-100000.0"),
    ("123e-2", "1.23"),
    ("1.5e-7", "1.4999999999999999e-07"),
    ("1e-7", "9.9999999999999995e-08"),
    ("-1e-5", "-1.0000000000000001e-05"),
    ("0.30000000000000004", "0.30000000000000004"),
    ("123456789.0", "123456789.0"),
    ("0.0", "0.0"),
    ("-0.0", "-0.0"),
    ("1e-400", "0.0"),
    ("5e-324", "4.9406564584124654e-324"),
    ("2.5e-324", "4.9406564584124654e-324"),
    ("1.7976931348623157e308", "1.7976931348623157e+308"),
    ("-5", "-5"),
    ("0", "0"),
    ("-0", "0"),
    ("01", "1"),
    ("00", "0"),
    ("-01", "-1"),
    ("+1", "1.0"),
    ("+0", "0.0"),
    ("+01.5", "1.5"),
    ("1.", "1.0"),
    ("-1.", "-1.0"),
    ("-.5", "-0.5"),
    ("+.5", "0.5"),
    ("-", "0"),
    ("18446744073709551615", "18446744073709551615"),
    ("18446744073709551616", "1.8446744073709552e+19"),
    ("9223372036854775807", "9223372036854775807"),
    ("-9223372036854775808", "-9223372036854775808"),
    ("-9223372036854775809", "-9.2233720368547758e+18"),
    ("123456789012345678901234567890", "1.2345678901234568e+29"),
    ("true", "true"),
    ("false", "false"),
    ('"s"', "s"),
    ('"a\\tb"', "a\tb"),
    ('"\\/"', "/"),
    ('"a\\u00e9"', "a\u00e9"),
    ('"\\ud83d\\ude00"', "\U0001f600"),
    ('"a/*b*/"', "a/*b*/"),
    ("1/*c*/", "1"),
]


@pytest.mark.parametrize(("literal", "expected"), UPSTREAM_ARG_STRINGS)
def test_arg_value_is_stringified_exactly_like_upstream(literal: str, expected: str) -> None:
    """Verified against upstream: the arg string oomd 0.5.0 logs for this literal."""
    assert arg_string(literal) == expected


# Source: the Debian oomd 0.5.0 binary aborted (exit 134, "Unable to parse JSON") on
# each of these as an arg value.
UPSTREAM_REJECTED_LITERALS: list[str] = [
    "1e400",
    "1.5e400",
    ".5",
    "NaN",
    "Infinity",
    "-Infinity",
    "+-1",
    "++1",
    "--1",
    "+",
    "-a",
    "-e5",
    "1e",
    "1e+",
    "1e5.",
    "1.5.",
    "1.2.3",
    "1-2",
    "1e5e5",
    "0x10",
    "'s'",
    "tru",
    "nul",
    "True",
    "TRUE",
    '"\\x"',
    '"\\u12"',
    '"\\ud800"',
    "[1,,2]",
    "[,]",
    "[,1]",
    "{,}",
]


@pytest.mark.parametrize("literal", UPSTREAM_REJECTED_LITERALS)
def test_value_rejected_by_upstream_is_a_json_error(literal: str) -> None:
    """Verified against upstream: oomd 0.5.0 refuses a config holding this value."""
    with pytest.raises(JsonError):
        parse('{"x": ' + literal + "}")


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("01", 1),
        ("-", 0),
        ("18446744073709551615", 2**64 - 1),
        ("-9223372036854775808", -(2**63)),
        ("1.", 1.0),
        ("+1", 1.0),
        ("18446744073709551616", 18446744073709551616.0),
        ("-9223372036854775809", -9223372036854775809.0),
    ],
)
def test_number_keeps_jsoncpps_integer_or_real_type(literal: str, expected: int | float) -> None:
    """jsoncpp decodeNumber: only [-]digits fitting in uint64 (or int64 when negative)
    are integers; anything else (a '+', '.', exponent, overflow) is a real."""
    value = parse('{"x": ' + literal + "}").value
    assert isinstance(value, dict)
    assert value["x"] == expected
    assert type(value["x"]) is type(expected)


# -- whole documents: verified against upstream ----------------------------------------

# Source: the Debian oomd 0.5.0 binary accepted (exit 0) a config file with exactly
# this text; unknown keys are ignored, so only the JSON reader decides.
UPSTREAM_ACCEPTED_DOCUMENTS: list[tuple[str, str, JsonValue]] = [
    ("trailing_comma_in_object", '{"a":1,}', {"a": 1}),
    ("trailing_comma_in_array", '{"a":[1,2,],}', {"a": [1, 2]}),
    ("block_comment_between_colon_and_value", '{"a":/*c*/1}', {"a": 1}),
    ("block_comment_after_last_array_item", '{"a":[1/*c*/]}', {"a": [1]}),
    ("comment_before_comma", '{"a":1 /*c*/ , "b":2}', {"a": 1, "b": 2}),
    ("comment_only_object", "{/*c*/}", {}),
    ("line_comments", '// head\n{"a": 1 // one\n}\n// tail\n', {"a": 1}),
    ("utf8_bom", '\ufeff{"a":1}', {"a": 1}),
    ("null_root", "null", None),
    ("null_root_with_comments", "/* c */ null // x\n", None),
    ("duplicate_keys_last_wins", '{"a":1,"a":2}', {"a": 2}),
    ("raw_newline_in_string", '{"a":"x\ny"}', {"a": "x\ny"}),
    ("raw_tab_in_string", '{"a":"x\ty"}', {"a": "x\ty"}),
    ("escaped_nul", '{"a":"\\u0000"}', {"a": "\x00"}),
    ("trailing_garbage", '{"a":1} garbage', {"a": 1}),
    ("second_document_ignored", '{"a":1}{"b":2}', {"a": 1}),
    ("lone_slash_after_value", '{"a":1} /', {"a": 1}),
    ("unterminated_comment_after_value", "{} /* unterminated", {}),
    ("trailing_letters_after_null", "nullx", None),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, value, id=name) for name, text, value in UPSTREAM_ACCEPTED_DOCUMENTS],
)
def test_document_accepted_by_upstream_parses_to_the_same_value(
    text: str, expected: JsonValue
) -> None:
    """Verified against upstream (reference 2.1): these load in oomd 0.5.0."""
    assert parse(text).value == expected


# Source: the Debian oomd 0.5.0 binary aborted with "Unable to parse JSON" (exit 134).
UPSTREAM_REJECTED_DOCUMENTS: list[tuple[str, str]] = [
    ("empty_file", ""),
    ("whitespace_only", "  \n"),
    ("comment_only", "// nothing\n"),
    ("comment_then_string_without_comma", '{"a":1 /*c*/ "b":2}'),
    ("unterminated_comment_inside_object", "{ /* unterminated"),
    ("comment_only_array", '{"a":[/*c*/]}'),
    ("comment_before_closing_bracket", '{"a":[1,/*c*/]}'),
    ("comment_between_key_and_colon", '{"a"/*c*/:1}'),
    ("single_slash_inside_object", '{"a":1 / }'),
    ("double_trailing_comma", '{"a":1,,}'),
    ("single_quoted_key", "{'a':1}"),
    ("numeric_key", "{1:2}"),
    ("unquoted_key", "{a:1}"),
    ("missing_colon", '{"a" 1}'),
    ("missing_value", '{"a":}'),
    ("unclosed_object", '{"a":1'),
    ("unclosed_array", '{"a":[1'),
    ("unclosed_string", '{"a":"x}'),
    ("word_with_suffix", '{"a":truex}'),
    ("vertical_tab_is_not_whitespace", '{\x0b"a":1}'),
    ("form_feed_is_not_whitespace", '{\x0c"a":1}'),
    ("nbsp_is_not_whitespace", '{\u00a0"a":1}'),
    ("high_surrogate_then_text", '{"a":"\\ud800abcdefg"}'),
]


@pytest.mark.parametrize(
    "text", [pytest.param(text, id=name) for name, text in UPSTREAM_REJECTED_DOCUMENTS]
)
def test_document_rejected_by_upstream_is_a_json_error(text: str) -> None:
    """Verified against upstream (reference 2.1, 2.6): oomd 0.5.0 aborts on these."""
    with pytest.raises(JsonError):
        parse(text)


# -- upstream behaviours the reader does not reproduce yet (src bugs) ------------------


def test_high_surrogate_pairs_with_any_following_escape_like_jsoncpp() -> None:
    """Verified against upstream: jsoncpp 1.9.5 decodeUnicodeCodePoint combines a high
    surrogate with whatever \\uXXXX follows, without checking it is a low surrogate:
    "\\ud800\\u0041" is U+10041 and oomd 0.5.0 loads the config."""
    value = parse('{"a":"\\ud800\\u0041"}').value
    assert value == {"a": "\U00010041"}


def test_line_comment_ends_at_a_bare_carriage_return_like_jsoncpp() -> None:
    """Verified against upstream: jsoncpp readCppStyleComment stops at '\\r' (old Mac
    line ends), so '{//c\\r"a":1}' loads in oomd 0.5.0."""
    assert parse('{//c\r"a":1}').value == {"a": 1}


def test_token_after_a_comment_in_an_object_is_taken_as_the_separator_like_jsoncpp() -> None:
    """Verified against upstream: in jsoncpp 1.9.5 OurReader::readObject, when a comment
    follows a member value the next token is read in place of the ',' and never checked,
    so oomd 0.5.0 loads '{"a":1 /*c*/ 7 "b":2}' and '{"x":-/**/1}' (x is 0)."""
    assert parse('{"a":1 /*c*/ 7 "b":2}').value == {"a": 1, "b": 2}
    assert parse('{"x":-/**/1}').value == {"x": 0}


def test_nesting_up_to_jsoncpps_stack_limit_is_accepted() -> None:
    """Verified against upstream: an object holding 999 nested arrays (1000 nested
    values) loads in oomd 0.5.0; jsoncpp's stackLimit is 1000."""
    depth = 999
    text = '{"a":' + "[" * depth + "]" * depth + "}"
    value = parse(text).value
    assert isinstance(value, dict)


def test_nesting_beyond_jsoncpps_stack_limit_is_a_json_error() -> None:
    """Verified against upstream: 1001 nested values abort oomd 0.5.0 ("Exceeded
    stackLimit in readValue()"); we must report a JsonError, not crash."""
    depth = 1001
    with pytest.raises(JsonError):
        parse("[" * depth + "]" * depth)


def test_moderate_nesting_does_not_escape_as_recursion_error() -> None:
    """Reference 2.1 (jsoncpp stackLimit 1000): 600 nested arrays are valid JSON for
    upstream; the reader must not die of Python's own recursion limit."""
    depth = 600
    value = parse("[" * depth + "]" * depth).value
    assert isinstance(value, list)


# -- structure, positions and trailing content ------------------------------------------


def test_error_names_line_and_column_of_the_offending_token() -> None:
    """jsoncpp reports errors as 'Line L, Column C' of the token (reference 2.6)."""
    with pytest.raises(JsonError) as excinfo:
        parse('{\n  "a": [1,,2]\n}')
    assert (excinfo.value.line, excinfo.value.column) == (2, 11)
    assert str(excinfo.value).startswith("line 2, column 11: ")


def test_error_position_counts_columns_from_one_on_each_line() -> None:
    with pytest.raises(JsonError) as excinfo:
        parse("{\n\"a\": 1,\n\n  'b': 2}")
    assert excinfo.value.line == 4
    assert excinfo.value.column == 3


def test_unclosed_string_error_points_at_its_opening_quote() -> None:
    with pytest.raises(JsonError) as excinfo:
        parse('{\n  "a": "abc\n}')
    assert (excinfo.value.line, excinfo.value.column) == (2, 8)


def test_trailing_content_is_ignored_but_its_position_reported() -> None:
    """Reference 2.1: content after the first complete value is ignored (jsoncpp
    failIfExtra is off); ParseResult.trailing says where it starts."""
    result = parse('{"a": 1}\n  garbage')
    assert result.value == {"a": 1}
    assert result.trailing == (2, 3)


def test_trailing_comments_and_whitespace_are_not_trailing_content() -> None:
    result = parse('{"a": 1}  // done\n/* really */\n\n')
    assert result.trailing is None


def test_unterminated_comment_after_the_value_is_reported_as_trailing() -> None:
    """Verified against upstream: '{} /* unterminated' loads in oomd 0.5.0."""
    result = parse("{} /* unterminated")
    assert result.value == {}
    assert result.trailing == (1, 4)


def test_bom_is_skipped_and_positions_count_from_after_it() -> None:
    result = parse('\ufeff{"a": 1} x')
    assert result.value == {"a": 1}
    assert result.trailing == (1, 10)


def test_duplicate_key_keeps_the_last_value_even_across_types() -> None:
    """Reference 2.1: jsoncpp assigns currentValue()[name] again; the last wins."""
    assert parse('{"a": {"b": 1}, "a": [2], "a": "c"}').value == {"a": "c"}


def test_nested_structures_parse_to_python_values() -> None:
    text = '{"r": [{"n": "x", "d": [["g", {"a": {"k": null}}]]}], "e": [], "o": {}}'
    assert parse(text).value == {
        "r": [{"n": "x", "d": [["g", {"a": {"k": None}}]]}],
        "e": [],
        "o": {},
    }


def test_string_escapes_decode_like_jsoncpp() -> None:
    """jsoncpp decodeString: the JSON escapes, \\u with surrogate pairs."""
    text = r'{"s": "\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u20ac \ud83d\ude00"}'
    assert parse(text).value == {"s": '" \\ / \b \f \n \r \t A \u00e9 \u20ac \U0001f600'}


# -- as_string --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, "0.10000000000000001"),
        (80.0, "80.0"),
        (80.5, "80.5"),
        (1e20, "1e+20"),
        (1e-7, "9.9999999999999995e-08"),
        (-0.0, "-0.0"),
        (2.0**53, "9007199254740992.0"),
        (0, "0"),
        (-5, "-5"),
        (2**64 - 1, "18446744073709551615"),
        (True, "true"),
        (False, "false"),
        ("text", "text"),
        ("", ""),
        (None, ""),
    ],
)
def test_as_string_matches_jsoncpp_asstring(value: JsonValue, expected: str) -> None:
    """Reference 2.3: jsoncpp asString: reals as %.17g plus ".0" when the text has no
    '.' or 'e', integers in decimal, bools as true/false, null as ""."""
    assert as_string(value) == expected


@pytest.mark.parametrize("value", [[], [1], {}, {"a": 1}])
def test_as_string_refuses_arrays_and_objects(value: JsonValue) -> None:
    """jsoncpp asString throws on arrays and objects (reference 2.3)."""
    with pytest.raises(TypeError):
        as_string(value)


def test_json_error_keeps_message_line_and_column_separately() -> None:
    error = jsonc.JsonError("boom", 3, 7)
    assert (error.message, error.line, error.column) == ("boom", 3, 7)
    assert str(error) == "line 3, column 7: boom"
