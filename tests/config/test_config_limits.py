"""Config inputs that once escaped as tracebacks or hung the reader (issue 12, item 4):
each is now a located config error, and the daemon's exit statuses stay upstream's
(``-c`` exits 1, ``-C`` exits 3)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

import pytest

from oomd.config import jsonc
from oomd.config.compiler import compile_config
from oomd.config.errors import ConfigError
from oomd.config.parser import load_config, parse_config
from oomd.engine.plugin import PluginEnv
from tests.support.daemon import our_oomd

HUGE = "7" * 5000


def test_an_integer_longer_than_pythons_digit_limit_is_read_as_jsoncpp_reads_it() -> None:
    """jsoncpp reads an integer that does not fit in 64 bits as a double; 5,000 digits
    overflow it, which the reader reports like any other out-of-range number."""
    with pytest.raises(jsonc.JsonError, match="is not a number") as info:
        jsonc.parse('{"x": ' + HUGE + "}")
    assert (info.value.line, info.value.column) == (1, 7)


def test_leading_zeros_do_not_count_towards_the_digit_limit() -> None:
    value = jsonc.parse('{"x": ' + "0" * 5000 + "42}").value
    assert value == {"x": 42}


def test_a_huge_integer_in_a_config_is_a_located_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('{"rulesets": [{"name": ' + HUGE + "}]}", "c.json")
    assert info.value.problems[0].startswith("c.json:1:24: invalid JSON:")


def run_oomd(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*our_oomd(), *args, "-D", str(tmp_path / "run"), "--kmsg-override", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        timeout=30,
        # Before the fix /dev/zero grew without bound: cap the damage.
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)),
    )


@pytest.mark.parametrize(("flag", "status"), [("-c", 1), ("-C", 3)])
def test_a_huge_integer_exits_with_upstreams_status_and_no_traceback(
    flag: str, status: int, tmp_path: Path
) -> None:
    config = tmp_path / "huge.json"
    config.write_text('{"rulesets": [{"name": "r", "post_action_delay": ' + HUGE + "}]}")
    result = run_oomd(flag, str(config), tmp_path=tmp_path)
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{config}:1:" in result.stderr


# -- user-named files: regular files only, size-bounded ---------------------------


def test_a_fifo_config_is_refused_at_once_naming_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as info:
        load_config(str(fifo))
    assert info.value.problems == [f"Could not open confg_file={fifo} (not a regular file)"]


def test_a_device_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config("/dev/zero")


def test_a_config_larger_than_the_bound_is_refused(tmp_path: Path) -> None:
    from oomd import trusted

    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(trusted.MAX_FILE_BYTES + 1)
    with pytest.raises(ConfigError, match="larger than"):
        load_config(str(big))


@pytest.mark.parametrize(("flag", "status"), [("-c", 1), ("-C", 3)])
def test_the_daemon_refuses_a_fifo_or_dev_zero_config(
    flag: str, status: int, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        result = run_oomd(flag, path, tmp_path=tmp_path)
        assert result.returncode == status, result.stderr
        assert f"Could not open confg_file={path} (not a regular file)" in result.stderr


# -- cgroup patterns: rejected when the config is compiled, with a location ---------


def ruleset_with(cgroup: str, action_cgroup: str = "a/*") -> str:
    return json.dumps(
        {
            "rulesets": [
                {
                    "name": "r",
                    "cgroup": cgroup,
                    "detectors": [["g", {"name": "continue"}]],
                    "actions": [
                        {"name": "kill_by_memory_size_or_growth", "args": {"cgroup": action_cgroup}}
                    ],
                }
            ]
        }
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [("a\\u0000b", "NUL character"), ("\\udfff/x", "lone surrogate"), ("x/..", '".." component')],
)
def test_a_bad_ruleset_cgroup_is_a_located_compile_error(
    text: str, why: str, env: PluginEnv
) -> None:
    """Issue 12: a NUL passed -c, then failed every tick of every ruleset."""
    ir = parse_config(ruleset_with("").replace('"cgroup": ""', f'"cgroup": "{text}"'), "c.json")
    with pytest.raises(ConfigError) as info:
        compile_config(ir, env)
    (problem,) = info.value.problems
    assert problem.startswith('c.json: ruleset "r": "cgroup": cgroup pattern')
    assert why in problem


def test_a_bad_plugin_cgroup_arg_is_a_located_compile_error(env: PluginEnv) -> None:
    ir = parse_config(ruleset_with("", action_cgroup="../*"), "c.json")
    with pytest.raises(ConfigError) as info:
        compile_config(ir, env)
    (problem,) = info.value.problems
    assert problem.startswith('c.json: ruleset "r": action #1')
    assert '".." component' in problem
