"""A JSON reader that accepts exactly what upstream's jsoncpp reader (1.9.5, comments
allowed) accepts, so every config that upstream oomd loads loads here too.

jsoncpp is more lenient than RFC 8259: ``//`` and ``/* */`` comments wherever a token
may start, trailing commas in arrays and objects, a UTF-8 BOM, numbers such as ``01``,
``+1``, ``1.`` and a lone ``-`` (which is 0), duplicate keys (the last wins), and any
content after the first complete value (ignored; we report it as a warning). It rejects
single quotes, ``NaN``/``Infinity`` and dropped values such as ``[1,,2]``.

Numbers keep jsoncpp's integer/real distinction because plugin args are stringified the
way jsoncpp's ``asString`` does (see :func:`as_string`).
"""

from __future__ import annotations

import math
import sys

from oomd.cnum import INT64_MIN, UINT64_MAX
from oomd.typeshim import NamedTuple

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

_STACK_LIMIT = 1000


class JsonError(Exception):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


class ParseResult(NamedTuple):
    value: JsonValue
    trailing: tuple[int, int] | None  # (line, column) of ignored trailing content


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    # -- positions and errors ---------------------------------------------------------

    def where(self, pos: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return line, column

    def error(self, message: str, pos: int) -> JsonError:
        line, column = self.where(pos)
        return JsonError(message, line, column)

    # -- lexing -------------------------------------------------------------------

    def skip_spaces(self) -> None:
        text = self.text
        n = len(text)
        while self.pos < n and text[self.pos] in " \t\r\n":
            self.pos += 1

    def skip_spaces_and_comments(self) -> None:
        text = self.text
        while True:
            self.skip_spaces()
            if text.startswith("//", self.pos):
                end = self.pos + 2
                while end < len(text) and text[end] not in "\r\n":
                    end += 1
                self.pos = end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated /* comment", self.pos)
                self.pos = end + 2
            elif text.startswith("/", self.pos):
                raise self.error("a comment must start with // or /*", self.pos)
            else:
                return

    def token(self) -> str:
        """Consume one token of any kind (as jsoncpp's readToken); returns its first
        character, or "" (consuming nothing) if no valid token starts here."""
        c = self.peek()
        if c and c in "{}[],:":
            self.pos += 1
            return c
        if c == '"':
            self.string()
            return c
        if c == "-" or c == "+" or (c.isdigit() and c.isascii()):
            self.number()
            return c
        for word in ("true", "false", "null"):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return c
        return ""

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    # -- values ---------------------------------------------------------------------

    def value(self) -> JsonValue:
        self.depth += 1
        if self.depth > _STACK_LIMIT:
            raise self.error("nesting too deep", self.pos)
        try:
            self.skip_spaces_and_comments()
            start = self.pos
            c = self.peek()
            if c == "{":
                self.pos += 1
                return self.obj(start)
            if c == "[":
                self.pos += 1
                return self.array()
            if c == '"':
                return self.string()
            if c == "-" or c == "+" or (c.isdigit() and c.isascii()):
                return self.number()
            for word, result in (("true", True), ("false", False), ("null", None)):
                if self.text.startswith(word, self.pos):
                    self.pos += len(word)
                    return result
            raise self.error("syntax error: value, object or array expected", start)
        finally:
            self.depth -= 1

    def obj(self, start: int) -> dict[str, JsonValue]:
        result: dict[str, JsonValue] = {}
        name: str | None = None
        while True:
            self.skip_spaces_and_comments()
            token_pos = self.pos
            c = self.peek()
            if c == "}":
                # Empty object, or a trailing comma after a member.
                self.pos += 1
                return result
            if c != '"':
                if not c:
                    raise self.error("missing '}' (object not closed)", start)
                raise self.error("missing '}' or object member name", token_pos)
            name = self.string()
            self.skip_spaces()
            if self.peek() != ":":
                raise self.error("missing ':' after object member name", self.pos)
            self.pos += 1
            result[name] = self.value()
            self.skip_spaces()
            c = self.peek()
            if c == "/":
                # jsoncpp quirk: after a comment here, the next token - whatever it
                # is - is taken as the separator (only '}' ends the object).
                self.skip_spaces_and_comments()
                token_pos = self.pos
                if self.token() == "}":
                    return result
                if self.pos == token_pos:
                    raise self.error("missing ',' or '}' in object declaration", token_pos)
                continue
            if c == ",":
                self.pos += 1
                continue
            if c == "}":
                self.pos += 1
                return result
            raise self.error("missing ',' or '}' in object declaration", self.pos)

    def array(self) -> list[JsonValue]:
        result: list[JsonValue] = []
        while True:
            # jsoncpp only skips blanks (not comments) before looking for ']'.
            self.skip_spaces()
            if self.peek() == "]":
                self.pos += 1
                return result
            result.append(self.value())
            self.skip_spaces_and_comments()
            c = self.peek()
            if c == ",":
                self.pos += 1
                continue
            if c == "]":
                self.pos += 1
                return result
            raise self.error("missing ',' or ']' in array declaration", self.pos)

    def string(self) -> str:
        text = self.text
        start = self.pos
        self.pos += 1
        out: list[str] = []
        while True:
            end = self.pos
            while end < len(text) and text[end] not in '"\\':
                end += 1
            out.append(text[self.pos : end])
            if end >= len(text):
                raise self.error("missing '\"' (string not closed)", start)
            if text[end] == '"':
                self.pos = end + 1
                return "".join(out)
            # Backslash escape.
            esc = text[end + 1 : end + 2]
            self.pos = end + 2
            simple = {
                '"': '"',
                "/": "/",
                "\\": "\\",
                "b": "\b",
                "f": "\f",
                "n": "\n",
                "r": "\r",
                "t": "\t",
            }
            if esc in simple:
                out.append(simple[esc])
            elif esc == "u":
                code = self.unicode_escape(end)
                out.append(code)
            else:
                raise self.error("bad escape sequence in string", end)

    def unicode_escape(self, at: int) -> str:
        def hex4() -> int:
            digits = self.text[self.pos : self.pos + 4]
            if len(digits) != 4 or any(ch not in "0123456789abcdefABCDEF" for ch in digits):
                raise self.error(
                    "bad unicode escape sequence in string: four hex digits expected", at
                )
            self.pos += 4
            return int(digits, 16)

        code = hex4()
        if 0xD800 <= code <= 0xDBFF:
            if not self.text.startswith("\\u", self.pos):
                raise self.error(
                    "additional six characters expected to parse unicode surrogate pair", at
                )
            self.pos += 2
            low = hex4()
            # Like jsoncpp, the second escape is combined without checking its range.
            code = 0x10000 + ((code & 0x3FF) << 10) + (low & 0x3FF)
        return chr(code)

    def number(self) -> int | float:
        text = self.text
        start = self.pos
        p = start + 1
        n = len(text)

        def digits(i: int) -> int:
            while i < n and "0" <= text[i] <= "9":
                i += 1
            return i

        p = digits(p)
        if p < n and text[p] == ".":
            p = digits(p + 1)
        if p < n and text[p] in "eE":
            p += 1
            if p < n and text[p] in "+-":
                p += 1
            p = digits(p)
        self.pos = p
        token = text[start:p]
        body = token[1:] if token[0] == "-" else token
        # More than 20 significant digits never fits in 64 bits (and int() refuses
        # over 4,300 digits): such a number is a double, as jsoncpp reads it.
        significant = body.lstrip("0")
        if body == "" or (body.isdigit() and len(significant) <= 20):
            value = int(significant or "0")
            if token[0] == "-":
                if value <= -INT64_MIN:
                    return -value
            elif value <= UINT64_MAX:
                return value
        try:
            result = float(token)
        except ValueError:
            raise self.error(f"'{token}' is not a number", start) from None
        if math.isinf(result):
            raise self.error(f"'{token}' is not a number", start)
        return result


def parse(text: str) -> ParseResult:
    """Parse ``text`` as jsoncpp would; raises :class:`JsonError` with line/column."""
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = _Reader(text)
    # jsoncpp allows 1000 levels; each level costs this reader a few Python frames.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * _STACK_LIMIT + 200))
    try:
        value = reader.value()
    finally:
        sys.setrecursionlimit(limit)
    trailing = None
    try:
        reader.skip_spaces_and_comments()
        if reader.pos < len(text):
            trailing = reader.where(reader.pos)
    except JsonError as e:
        trailing = (e.line, e.column)
    return ParseResult(value, trailing)


def as_string(value: JsonValue) -> str:
    """jsoncpp's ``asString`` for scalars: how upstream hands arg values to plugins."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.17g}"
        if "." not in text and "e" not in text:
            text += ".0"
        return text
    if isinstance(value, str):
        return value
    raise TypeError("arrays and objects have no string form")
