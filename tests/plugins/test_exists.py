"""exists (upstream plugins/Exists.cpp, reference 5.2; CorePluginsTest ExistsTest:
Exists, NotExists, ExistsWildcard, NotExistsWildcard)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomd.engine.plugin import PluginRet
from oomd.plugins.exists import Exists, exists_fires
from tests.support.harness import Harness, plugin, ruleset

CONTINUE, STOP = PluginRet.CONTINUE, PluginRet.STOP


def detector(h: Harness, **args: Any) -> Exists:
    found = h.detector("exists", **args)
    assert isinstance(found, Exists)
    return found


@pytest.mark.parametrize(
    ("negate", "before", "after"), [("false", STOP, CONTINUE), ("true", CONTINUE, STOP)]
)
def test_comma_list(harness: Harness, negate: str, before: PluginRet, after: PluginRet) -> None:
    """ExistsTest.Exists / ExistsTest.NotExists: cgroup_D is not in the list,
    cgroup_C is."""
    found = detector(harness, cgroup="cgroup_A,cgroup_B,cgroup_C", negate=negate)
    harness.tree.cgroup("cgroup_D")
    assert harness.run(found) is before
    harness.tree.cgroup("cgroup_C")
    assert harness.run(found) is after


@pytest.mark.parametrize(
    ("negate", "before", "after"), [("false", STOP, CONTINUE), ("true", CONTINUE, STOP)]
)
def test_wildcard(harness: Harness, negate: str, before: PluginRet, after: PluginRet) -> None:
    """ExistsTest.ExistsWildcard / ExistsTest.NotExistsWildcard."""
    found = detector(harness, cgroup="cgroup_PREFIX*", negate=negate)
    harness.tree.cgroup("cgroup_SOMETHING")
    assert harness.run(found) is before
    harness.tree.cgroup("cgroup_PREFIXhere")
    assert harness.run(found) is after


def test_vanishing_cgroup(harness: Harness) -> None:
    harness.tree.cgroup("a/b")
    found = detector(harness, cgroup="a/*")
    assert harness.run(found) is CONTINUE
    harness.tree.remove("a/b")
    assert harness.run(found) is STOP
    harness.tree.remove("a")
    assert harness.run(found) is STOP


def test_files_and_dot_names_do_not_count(harness: Harness) -> None:
    """Reference 4.2: only directories match; wildcards skip names starting with "."."""
    harness.tree.write("", "cgroup_file", "x")
    harness.tree.cgroup(".hidden")
    assert harness.run(detector(harness, cgroup="cgroup_file")) is STOP
    assert harness.run(detector(harness, cgroup="*hidden")) is STOP
    assert harness.run(detector(harness, cgroup=".hidden")) is CONTINUE


def test_root_always_exists(harness: Harness) -> None:
    assert harness.run(detector(harness, cgroup="/")) is CONTINUE
    assert harness.run(detector(harness, cgroup="/", negate="true")) is STOP


def test_nested_wildcards_and_braces(harness: Harness) -> None:
    harness.tree.cgroup("user.slice/user-1000.slice/session-3.scope")
    assert harness.run(detector(harness, cgroup="user.slice/user-*.slice/session-*.scope")) is (
        CONTINUE
    )
    assert harness.run(detector(harness, cgroup="user.slice/user-{1000}.slice")) is CONTINUE
    assert harness.run(detector(harness, cgroup="user.slice/user-?.slice")) is STOP


def test_decision() -> None:
    assert exists_fires(True, False) and exists_fires(False, True)
    assert not exists_fires(False, False) and not exists_fires(True, True)


def test_no_log_lines(harness: Harness, oolog: Path) -> None:
    harness.tree.cgroup("a")
    assert harness.run(detector(harness, cgroup="a", debug="true")) is CONTINUE
    assert oolog.read_text() == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"cgroup": "a", "negate": "yes"}, 'arg "negate"'),
        ({"cgroup": "a", "debug": "x"}, 'arg "debug"'),  # verified: rejected
        ({"negate": "true"}, 'Required arg "cgroup" missing'),
        ({"cgroup": "a", "count": "1"}, 'Unknown arg "count"'),
    ],
)
def test_bad_args_are_rejected(harness: Harness, args: dict[str, str], message: str) -> None:
    problems = harness.problems("exists", **args)
    assert len(problems) == 1 and message in problems[0], problems


def test_defaults(harness: Harness) -> None:
    found = detector(harness, cgroup="a")
    assert (found.negate, found.debug) == (False, False)


def test_guards_an_action_in_the_engine(harness: Harness, oolog: Path) -> None:
    """A typical use: run the group only while a service's cgroup exists."""
    harness.load(
        {
            "rulesets": [
                ruleset(
                    "while present",
                    [("present", [plugin("exists", cgroup="system.slice/db.service")])],
                    [plugin("continue")],
                )
            ]
        }
    )
    seen = []
    for present in (False, True, True, False):
        if present:
            harness.tree.cgroup("system.slice/db.service")
        elif harness.tree.path("system.slice/db.service").exists():
            harness.tree.remove("system.slice/db.service")
        before = oolog.read_text().count("has fired")
        harness.tick()
        seen.append(oolog.read_text().count("has fired") > before)
    assert seen == [False, True, True, False]
