"""Cgroup paths and patterns (``oomd.cgroup.path``).

Upstream reference: ``src/oomd/include/CgroupPathTest.cpp``, ``FsTest.Glob`` and
reference sections 4.1, 4.2 and 2.5.
"""

from __future__ import annotations

import os

import pytest

from oomd.cgroup.path import CgroupPath, CgroupPattern, parse_pattern_list
from tests.support.tree import FakeTree

FS = "/sys/fs/cgroup"


def resolved(tree: FakeTree, text: str) -> list[str]:
    """Relative paths a pattern resolves to on the tree, sorted."""
    return sorted(p.relative for p, _ in CgroupPattern(tree.fs, text).resolve())


# --- CgroupPath ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "/", "////", "////////"])
def test_path_root_spellings_are_the_root(text: str) -> None:
    """CgroupPathTest.ConstructorsTest / GettersTest: "", "/" and "////" are root."""
    p = CgroupPath(FS, text)
    assert p.is_root
    assert p.parts == ()
    assert p.relative == ""
    assert p.absolute == FS
    assert p.name == ""


def test_path_getters() -> None:
    """CgroupPathTest.GettersTest: absolute, relative, fs and parts."""
    p = CgroupPath(FS, "system.slice/myservice.slice")
    assert p.absolute == "/sys/fs/cgroup/system.slice/myservice.slice"
    assert p.relative == "system.slice/myservice.slice"
    assert p.fs == FS
    assert p.parts == ("system.slice", "myservice.slice")
    assert p.name == "myservice.slice"
    assert not p.is_root


def test_path_empty_components_are_dropped() -> None:
    """Reference 4.1: "/a//b/" is a/b."""
    assert CgroupPath(FS, "/a//b/") == CgroupPath(FS, "a/b")
    assert CgroupPath(FS, "/a//b/").parts == ("a", "b")
    assert CgroupPath(FS, "/a//b/").relative == "a/b"


def test_path_relative_and_absolute_spellings_are_equal() -> None:
    """Reference 4.1: a leading "/" in the relative path changes nothing."""
    assert CgroupPath(FS, "/system.slice") == CgroupPath(FS, "system.slice")
    assert CgroupPath(FS, "/system.slice").absolute == "/sys/fs/cgroup/system.slice"


def test_path_one_trailing_slash_of_fs_is_stripped() -> None:
    """Reference 4.1: one trailing "/" is stripped from a fs longer than one char."""
    p = CgroupPath(FS + "/", "a")
    assert p.fs == FS
    assert p.absolute == "/sys/fs/cgroup/a"
    assert CgroupPath(FS + "/", "").absolute == FS


def test_path_fs_of_slash_is_kept() -> None:
    """Reference 4.1: a fs of "/" is not stripped; absolute paths have one slash."""
    assert CgroupPath("/", "a/b").absolute == "/a/b"
    assert CgroupPath("/", "").absolute == "/"


def test_path_dot_components_are_kept_literally() -> None:
    """Reference 4.1: "." and ".." are kept (they show up in logs)."""
    p = CgroupPath(FS, "./cgroup1")
    assert p.parts == (".", "cgroup1")
    assert p.relative == "./cgroup1"


def test_path_child_splits_on_slash() -> None:
    """CgroupPathTest.ModifiersTest: getChild splits its argument on "/"."""
    p = CgroupPath(FS, "system.slice")
    p = p.child("myservice").child("/one/").child("two/").child("three")
    assert p.relative == "system.slice/myservice/one/two/three"
    assert p.parent().parent().relative == "system.slice/myservice/one"


def test_path_parent_of_root_raises() -> None:
    """CgroupPathTest.ModifiersTest: the root has no parent."""
    with pytest.raises(ValueError):
        CgroupPath(FS, "").parent()


def test_path_parent_of_top_level_is_root() -> None:
    """CgroupPathTest.ComparisonsTest: the parent of a top-level cgroup is the root."""
    p = CgroupPath(FS, "asdf.slice")
    assert not p.is_root
    assert p.parent().is_root
    assert p.parent() == CgroupPath(FS, "/")


def test_path_equality() -> None:
    """CgroupPathTest.ComparisonsTest: equality by path."""
    assert CgroupPath(FS, "system.slice") == CgroupPath(FS, "system.slice")
    assert CgroupPath(FS, "system.slice") != CgroupPath(FS, "asdf.slice")
    assert CgroupPath(FS, "a") != CgroupPath("/other", "a")
    assert CgroupPath(FS, "a") != "/sys/fs/cgroup/a"


def test_path_equality_and_hash_go_by_absolute_path() -> None:
    """Reference 4.1: equality/hash by absolute path (different fs/relative splits of
    the same directory are the same cgroup)."""
    a = CgroupPath(FS, "a/b")
    b = CgroupPath(FS + "/a", "b")
    assert a == b
    assert hash(a) == hash(b)


def test_path_hash() -> None:
    """CgroupPathTest.HashTest: usable as dict keys, equal paths find the same entry."""
    m = {CgroupPath(FS, "system.slice"): 1, CgroupPath(FS, "workload.slice"): 2}
    assert m[CgroupPath(FS, "system.slice")] == 1
    assert m[CgroupPath(FS, "/workload.slice/")] == 2
    assert len({CgroupPath(FS, ""), CgroupPath(FS, "/"), CgroupPath(FS, "////")}) == 1


def test_path_is_ancestor_of_is_strict_and_component_wise() -> None:
    """Descendant test is component-wise ("a" is not an ancestor of "ab")."""
    a = CgroupPath(FS, "a")
    assert a.is_ancestor_of(CgroupPath(FS, "a/b"))
    assert a.is_ancestor_of(CgroupPath(FS, "a/b/c"))
    assert not a.is_ancestor_of(a)
    assert not a.is_ancestor_of(CgroupPath(FS, "ab"))
    assert CgroupPath(FS, "").is_ancestor_of(a)


def test_path_ordering_by_components() -> None:
    """Paths sort component-wise (used to make resolution deterministic)."""
    paths = [CgroupPath(FS, p) for p in ["b", "a/z", "a", "a-b"]]
    assert [p.relative for p in sorted(paths)] == ["a", "a/z", "a-b", "b"]


# --- CgroupPattern.resolve -------------------------------------------------------


def test_pattern_star_matches_within_a_component(tree: FakeTree) -> None:
    """FsTest.Glob: "dir*" matches dir1 and dir2 only."""
    for name in ["dir1", "dir2", "different_dir"]:
        tree.cgroup(f"wildcard/{name}")
    assert resolved(tree, "wildcard/dir*") == ["wildcard/dir1", "wildcard/dir2"]


def test_pattern_star_does_not_cross_components(tree: FakeTree) -> None:
    """Reference 4.2: wildcards work within one component only."""
    tree.cgroup("a/b/c")
    assert resolved(tree, "*") == ["a"]
    assert resolved(tree, "*/*") == ["a/b"]
    assert resolved(tree, "a/*/c") == ["a/b/c"]


def test_pattern_double_star_is_same_as_star(tree: FakeTree) -> None:
    """CgroupPathTest.ResolveWildcardTest: "dir/**" matches subdirectories only, one level."""
    tree.cgroup("wildcard_root/b_dir")
    tree.cgroup("wildcard_root/d_dir/e_dir")
    tree.write("wildcard_root", "a.txt", "content of a\n")
    tree.write("wildcard_root", "c.txt", "content of c\n")
    tree.write("wildcard_root/d_dir", "e.txt", "content of e\n")
    assert resolved(tree, "wildcard_root/**") == ["wildcard_root/b_dir", "wildcard_root/d_dir"]
    assert resolved(tree, "wildcard_root/**") == resolved(tree, "wildcard_root/*")


def test_pattern_question_mark_matches_one_character(tree: FakeTree) -> None:
    """Reference 4.2: ``?`` matches exactly one character."""
    for name in ["a1", "a22", "b1"]:
        tree.cgroup(name)
    assert resolved(tree, "a?") == ["a1"]
    assert resolved(tree, "??") == ["a1", "b1"]


def test_pattern_bracket_class(tree: FakeTree) -> None:
    """Reference 4.2: ``[...]`` character classes (and ``[!...]`` negation)."""
    for name in ["a.slice", "b.slice", "c.slice"]:
        tree.cgroup(name)
    assert resolved(tree, "[ab].slice") == ["a.slice", "b.slice"]
    assert resolved(tree, "[a-b].slice") == ["a.slice", "b.slice"]
    assert resolved(tree, "[!ab].slice") == ["c.slice"]


def test_pattern_bracket_caret_negates_like_glibc_glob(tree: FakeTree) -> None:
    """Module docstring: "the rules of the glob(3) call upstream uses". glibc's
    fnmatch treats ``[^...]`` like ``[!...]`` (negation) unless POSIXLY_CORRECT."""
    for name in ["a.slice", "b.slice", "c.slice"]:
        tree.cgroup(name)
    assert resolved(tree, "[^ab].slice") == ["c.slice"]


def test_pattern_wildcards_do_not_match_dot_names(tree: FakeTree) -> None:
    """Reference 4.2: names starting with "." are not matched by wildcards."""
    tree.cgroup("visible")
    tree.cgroup(".hidden")
    assert resolved(tree, "*") == ["visible"]
    assert resolved(tree, "?hidden") == []
    assert resolved(tree, "[.]hidden") == []


def test_pattern_dot_names_match_explicitly(tree: FakeTree) -> None:
    """glob(3): a leading "." in the pattern matches dot-names; a literal dot-name
    component resolves like any other literal."""
    tree.cgroup(".hidden")
    tree.cgroup("visible")
    assert resolved(tree, ".hid*") == [".hidden"]
    assert resolved(tree, ".hidden") == [".hidden"]


def test_pattern_files_never_match(tree: FakeTree) -> None:
    """FsTest.Glob (dir_only) / reference 4.2: files never match, wildcard or literal."""
    tree.cgroup("dir1")
    tree.write("", "file", "x\n")
    assert resolved(tree, "*") == ["dir1"]
    assert resolved(tree, "file") == []
    assert resolved(tree, "fi*") == []
    assert resolved(tree, "file/*") == []


def test_pattern_symlinks_never_match(tree: FakeTree) -> None:
    """Reference 4.2 (glob follows symlinks to directories) deliberately not followed
    (issue 12, docs/compatibility.md): a pattern is confined to the cgroup filesystem,
    which has no symlinks; in a tampered tree one could lead anywhere."""
    target = tree.cgroup("real")
    os.symlink(target, tree.path("link"))
    os.symlink(tree.root / "nowhere", tree.path("dangling"))
    assert resolved(tree, "*") == ["real"]
    assert resolved(tree, "link") == []
    assert resolved(tree, "link/*") == []
    assert resolved(tree, "dangling") == []


def test_pattern_missing_literal_components_resolve_to_nothing(tree: FakeTree) -> None:
    """FsTest.Glob (nonexistent path) / OomdContextTest.GetMultiple (NOT_EXIST)."""
    tree.cgroup("a")
    assert resolved(tree, "not/a/valid/dir") == []
    assert resolved(tree, "NOT_EXIST") == []
    assert resolved(tree, "missing/*") == []
    assert resolved(tree, "a/missing") == []


def test_pattern_slash_resolves_to_root(tree: FakeTree) -> None:
    """OomdContextTest.CgroupKeyRoot: "/" is the root cgroup."""
    result = CgroupPattern(tree.fs, "/").resolve()
    assert result == [(CgroupPath(tree.fs, ""), os.stat(tree.root).st_ino)]
    assert CgroupPattern(tree.fs, "").resolve() == result


def test_pattern_resolve_reports_inodes(tree: FakeTree) -> None:
    """CgroupContextTest.UniqueId: distinct cgroups have distinct, real inode numbers."""
    for name in "ABCD":
        tree.cgroup(name)
    result = CgroupPattern(tree.fs, "*").resolve()
    assert len(result) == 4
    for path, inode in result:
        assert inode == os.stat(path.absolute).st_ino
    assert len({inode for _, inode in result}) == 4


def test_pattern_literal_path_resolves(tree: FakeTree) -> None:
    """A pattern without wildcards names one existing directory."""
    tree.cgroup("system.slice/service1.service")
    assert resolved(tree, "system.slice/service1.service") == ["system.slice/service1.service"]
    assert resolved(tree, "/system.slice//service1.service/") == ["system.slice/service1.service"]


def test_pattern_single_brace_alternative(tree: FakeTree) -> None:
    """Reference 4.2: brace expansion works without commas: ``{x}`` is ``x``."""
    tree.cgroup("biggest")
    tree.cgroup("smallest")
    assert resolved(tree, "{biggest}") == ["biggest"]
    assert resolved(tree, "{big}gest") == ["biggest"]
    assert resolved(tree, "{*}est") == ["biggest", "smallest"]


def test_pattern_wildcard_in_a_middle_component(tree: FakeTree) -> None:
    """Reference 4.2: wildcards may appear in any component."""
    tree.cgroup("machine@1.slice/system.slice")
    tree.cgroup("machine@2.slice/system.slice")
    tree.cgroup("machine@3.slice/user.slice")
    assert resolved(tree, "machine@*.slice/system.slice") == [
        "machine@1.slice/system.slice",
        "machine@2.slice/system.slice",
    ]


def test_pattern_is_case_sensitive(tree: FakeTree) -> None:
    """glob(3) matching is case-sensitive."""
    tree.cgroup("Upper")
    assert resolved(tree, "u*") == []
    assert resolved(tree, "U*") == ["Upper"]


def test_pattern_has_wildcard() -> None:
    """Patterns with ``*``, ``?`` or ``[`` are wildcards; plain paths are not."""
    assert CgroupPattern(FS, "a/*").has_wildcard
    assert CgroupPattern(FS, "a?").has_wildcard
    assert CgroupPattern(FS, "[ab]").has_wildcard
    assert not CgroupPattern(FS, "a/b").has_wildcard
    assert not CgroupPattern(FS, "/").has_wildcard


def test_pattern_under_base(tree: FakeTree) -> None:
    """OomdContextTest.GetRulesetCgroups / CgroupPathTest.RelativeToTest: a pattern
    taken relative to a ruleset cgroup; "/" means the base itself."""
    tree.cgroup("dir2/dir3")
    base = CgroupPath(tree.fs, "dir2")
    assert [p.relative for p, _ in CgroupPattern(tree.fs, "dir3").under(base).resolve()] == [
        "dir2/dir3"
    ]
    assert [p.relative for p, _ in CgroupPattern(tree.fs, "/").under(base).resolve()] == ["dir2"]
    assert CgroupPattern(tree.fs, "dir2").under(base).resolve() == []
    root = CgroupPath(tree.fs, "")
    assert CgroupPattern(tree.fs, "dir2").under(root).parts == ("dir2",)
    wild = CgroupPattern(FS, "system.slice").under(CgroupPath(FS, "machine@0001.slice/*"))
    assert wild.parts == ("machine@0001.slice", "*", "system.slice")


# --- CgroupPattern.matches -------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("a/*", "a/b", True),
        ("a/*", "a/b/c", False),
        ("a/*", "a", False),
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("*/nux", "qoux/nux", True),
        ("foo/b*", "foo/bar", True),
        ("foo/b*", "foo/qux", False),
        ("a/?", "a/b", True),
        ("[ab]", "b", True),
        ("[ab]", "c", False),
        ("*", ".hidden", False),
        (".*", ".hidden", True),
        ("/", "", True),
        ("/", "a", False),
        ("**", "x", True),
        ("{a}", "a", True),
    ],
)
def test_pattern_matches(pattern: str, path: str, expected: bool) -> None:
    """Reference 4.2: the same matching rules as resolution, without the filesystem."""
    assert CgroupPattern(FS, pattern).matches(CgroupPath(FS, path)) is expected


# --- parse_pattern_list ----------------------------------------------------------


def test_parse_pattern_list_splits_on_commas() -> None:
    """Reference 2.5 / PluginArgParserTest.testCgroupStringParsing: comma list."""
    patterns = parse_pattern_list(FS, "system.slice,workload.slice/*")
    assert [p.text for p in patterns] == ["system.slice", "workload.slice/*"]
    assert all(p.fs == FS for p in patterns)


def test_parse_pattern_list_drops_empty_pieces() -> None:
    """UtilTest.Split: empty tokens are dropped."""
    assert [p.text for p in parse_pattern_list(FS, ",a,,b,")] == ["a", "b"]
    assert parse_pattern_list(FS, "") == ()
    assert parse_pattern_list(FS, ",,,") == ()


def test_parse_pattern_list_does_not_trim() -> None:
    """Reference 2.5: no trimming, so "a, b" names a cgroup called " b"."""
    patterns = parse_pattern_list(FS, "a, b")
    assert [p.text for p in patterns] == ["a", " b"]
    assert patterns[1].parts == (" b",)


def test_parse_pattern_list_breaks_brace_lists_at_commas(tree: FakeTree) -> None:
    """Reference 4.2: ``{a,b}`` is split into ``{a`` and ``b}`` before globbing."""
    tree.cgroup("a")
    tree.cgroup("b")
    patterns = parse_pattern_list(tree.fs, "{a,b}")
    assert [p.text for p in patterns] == ["{a", "b}"]
