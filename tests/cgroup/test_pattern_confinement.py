"""Patterns stay inside the cgroup filesystem (issue 12, items 4 and 7): ``..`` and
``.`` components, NUL characters, lone surrogates and absurd component counts are
rejected when the config is read; listing a wildcard never follows a symlink, nor does
a literal component; and resolution costs what the existing tree costs, not the
square of the pattern's length."""

from __future__ import annotations

import os

import pytest

from oomd.cgroup.path import MAX_PATTERN_COMPONENTS, CgroupPattern, parse_pattern_list
from tests.support.tree import FakeTree


def resolved(tree: FakeTree, text: str) -> list[str]:
    return sorted(p.relative for p, _ in CgroupPattern(tree.fs, text).resolve())


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("x/..", '".." component'),
        ("../*", '".." component'),
        ("a/../../b", '".." component'),
        ("a/{..}/b", '".." component'),
        ("./a", '"." component'),
        ("a/./b", '"." component'),
        ("a\x00b", "NUL character"),
        ("a/\ud800", "not valid Unicode"),
        ("\udc80", "not valid Unicode"),
        ("a/" * (MAX_PATTERN_COMPONENTS + 1), f"more than {MAX_PATTERN_COMPONENTS} components"),
    ],
)
def test_a_pattern_that_could_leave_the_mount_is_rejected(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=r"^cgroup pattern") as info:
        parse_pattern_list("/sys/fs/cgroup", "ok.slice," + text)
    assert why in str(info.value)
    assert len(str(info.value)) < 200  # a clear line, not the whole pattern echoed


@pytest.mark.parametrize("text", ["..x", "x..", ".hidden", ".*", "a.b/c", "caf\u00e9"])
def test_names_with_dots_are_still_patterns(text: str) -> None:
    assert parse_pattern_list("/sys/fs/cgroup", text)[0].text == text


def test_a_wildcard_never_follows_a_symlink(tree: FakeTree, tmp_path: os.PathLike[str]) -> None:
    outside = tree.root.parent / "outside"
    (outside / "secret").mkdir(parents=True)
    tree.cgroup("real")
    os.symlink(outside, tree.path("escape"))
    os.symlink(tree.path("real"), tree.path("alias"))
    assert resolved(tree, "*") == ["real"]
    assert resolved(tree, "*/*") == []
    assert resolved(tree, "escape/*") == []
    assert resolved(tree, "escape/secret") == []
    assert resolved(tree, "escape") == []


def test_resolution_of_a_long_pattern_stops_where_the_tree_stops(tree: FakeTree) -> None:
    """Was quadratic in the pattern's length: tens of thousands of components cost
    seconds per tick. Now a missing component ends the walk (counted in lstat calls,
    not timed)."""
    tree.cgroup("a/a/a")
    calls = 0
    real_lstat = os.lstat

    def counting_lstat(path: str, *args: object, **kwargs: object) -> os.stat_result:
        nonlocal calls
        calls += 1
        return real_lstat(path)

    pattern = CgroupPattern(tree.fs, "/".join(["a"] * MAX_PATTERN_COMPONENTS))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "lstat", counting_lstat)
        assert pattern.resolve() == []
    assert calls <= 4
