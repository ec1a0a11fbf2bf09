"""The config reader and compiler on arbitrary input: valid, or a ConfigError whose
every problem names the file - never another exception (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from oomd.config import jsonc
from oomd.config.compiler import compile_config
from oomd.config.errors import ConfigError
from oomd.config.parser import parse_config
from oomd.engine.plugin import PluginEnv

DATA = Path(__file__).resolve().parent.parent / "config" / "data"
REAL = jsonc.parse((DATA / "upstream-desktop.json").read_text()).value

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["..", "x/..", "*", "/", "a\x00b", "\udfff", "9" * 5000, "-1", "1e999"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=30,
)


def check(text: str, tmp_path: Path) -> None:
    fs = tmp_path / "cgroup"
    fs.mkdir(exist_ok=True)
    try:
        compile_config(parse_config(text, "f.json"), PluginEnv(cgroup_fs=str(fs)))
    except ConfigError as e:
        assert e.problems
        assert all(p.startswith("f.json") for p in e.problems), e.problems


@given(value=json_values)
def test_arbitrary_json_is_valid_or_a_located_error(value: Any, tmp_path_factory: Any) -> None:
    check(json.dumps(value), tmp_path_factory.mktemp("c"))


@given(text=st.text(max_size=200))
def test_arbitrary_text_is_valid_or_a_located_error(text: str, tmp_path_factory: Any) -> None:
    check(text, tmp_path_factory.mktemp("c"))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


REAL_PATHS = _paths(REAL)[1:]


@given(edits=st.lists(st.tuples(st.sampled_from(REAL_PATHS), json_values), min_size=1, max_size=3))
def test_mutations_of_a_real_config_are_valid_or_a_located_error(
    edits: list[tuple[tuple[Any, ...], Any]], tmp_path_factory: Any
) -> None:
    config = json.loads(json.dumps(REAL))
    for path, new in edits:
        target = config
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = new
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced the container
    check(json.dumps(config), tmp_path_factory.mktemp("c"))
