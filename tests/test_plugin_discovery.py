"""Third-party plugins: the ``oomd.plugins`` entry points, ``--plugin-dir``, name
clashes, and ``oomd -l``/``-c`` showing where each plugin comes from."""

from __future__ import annotations

import itertools
import os
import textwrap
from pathlib import Path

import pytest

from oomd import daemon
from oomd.cli import UsageExit, parse_args
from oomd.config.errors import ConfigError
from oomd.plugins import registry
from tests.support.harness import Harness, always_acting, plugin

EXAMPLE_DIST = "oomd-example-plugins"
EXAMPLE_PLUGINS = {
    "near_memory_limit": "oomd_example_plugins.near_limit:NearMemoryLimit",
    "kill_by_process_count": "oomd_example_plugins.kill_process_count:KillByProcessCount",
}

DETECTOR_FILE = """
from oomd.plugin import Detector, OomdContext

class Helper(Detector):
    '''No name: an abstract base, not registered.'''

class AlwaysFires(Helper):
    name = "always_fires"

    def detect(self, ctx: OomdContext) -> bool:
        return True
"""

_serial = itertools.count()


def plugin_dir(tmp_path: Path, files: dict[str, str], mode: int = 0o755) -> Path:
    directory = tmp_path / f"plugins{next(_serial)}"
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text))
        (directory / name).chmod(0o644)
    directory.chmod(mode)
    return directory


def fake_distribution(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, entry_points: dict[str, str]
) -> None:
    """An installed distribution (a dist-info directory on sys.path) registering
    ``entry_points`` in the oomd.plugins group."""
    site = tmp_path / f"site{next(_serial)}"
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[oomd.plugins]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    )
    monkeypatch.syspath_prepend(str(site))


def list_plugins(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    with pytest.raises(UsageExit) as excinfo:
        parse_args(argv)
    captured = capfd.readouterr()
    # The list on stdout, problems on stderr.
    return excinfo.value.code, (
        captured.out if excinfo.value.code == 0 else captured.err
    ).splitlines()


# -- entry points ------------------------------------------------------------------------


def test_the_example_package_is_discovered_through_its_entry_points() -> None:
    """`make test` installs examples/oomd-example-plugins into the venv."""
    registry.discover()
    for name, target in EXAMPLE_PLUGINS.items():
        origin = registry.origin(name)
        assert origin is not None, f"{EXAMPLE_DIST} is not installed (make test installs it)"
        assert origin == f"entry point: {EXAMPLE_DIST} 0.1.0, {target}"
        cls = registry.get(name)
        assert cls is not None and cls.name == name
    assert registry.origin("pressure_above") is None


def test_list_shows_builtins_as_upstream_and_third_party_with_origin(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    directory = plugin_dir(tmp_path, {"always.py": DETECTOR_FILE})
    # -l acts where it appears, yet sees a --plugin-dir given after it.
    code, lines = list_plugins(["-l", "--plugin-dir", str(directory)], capfd)
    assert code == 0
    assert lines[0] == "List of plugins oomd was compiled with:"
    assert " pressure_above" in lines and " kill_by_memory_size_or_growth" in lines
    assert f" always_fires (plugin dir: {directory}/always.py)" in lines
    for name, target in EXAMPLE_PLUGINS.items():
        assert f" {name} (entry point: {EXAMPLE_DIST} 0.1.0, {target})" in lines
    names = [line[1:].split(" (")[0] for line in lines[1:]]
    assert names == sorted(names)


def test_an_entry_point_named_like_a_builtin_is_an_error_naming_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fake_distribution(monkeypatch, tmp_path, "evil-plugins", {"pressure_above": "evil:Pressure"})
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover()
    assert excinfo.value.problems == [
        "plugin pressure_above (entry point: evil-plugins 1.0, evil:Pressure) has the name "
        "of a built-in plugin; rename it"
    ]
    # Nothing third-party is registered then, and -l fails the same way.
    assert registry.origin("near_memory_limit") is None
    code, lines = list_plugins(["-l"], capfd)
    assert code == 1 and lines == excinfo.value.problems


def test_the_same_name_from_two_sources_is_an_error_naming_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_distribution(monkeypatch, tmp_path, "other-plugins", {"always_fires": "other:Always"})
    directory = plugin_dir(tmp_path, {"always.py": DETECTOR_FILE})
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover([str(directory)])
    assert excinfo.value.problems == [
        "plugin always_fires is registered twice: entry point: other-plugins 1.0, "
        f"other:Always and plugin dir: {directory}/always.py"
    ]


def test_a_broken_entry_point_is_a_config_error_only_where_it_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, harness: Harness
) -> None:
    module = f"broken_plugins_{next(_serial)}"
    fake_distribution(
        monkeypatch,
        tmp_path,
        "broken-plugins",
        {
            "missing_module": "no_such_module_anywhere:Plugin",
            "wrong_name": f"{module}:Named",
            "not_a_plugin": f"{module}:NOT_A_PLUGIN",
        },
    )
    (tmp_path / f"{module}.py").write_text(
        "from oomd.plugin import Detector\n"
        "class Named(Detector):\n"
        "    name = 'something_else'\n"
        "NOT_A_PLUGIN = 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.discover()  # names only: nothing is imported yet
    harness.load(always_acting(plugin("stop")))
    problems = {}
    for name in ("missing_module", "wrong_name", "not_a_plugin"):
        with pytest.raises(ConfigError) as excinfo:
            harness.detector(name)
        [problems[name]] = excinfo.value.problems
    assert problems["missing_module"] == (
        'test.json: ruleset "r": detector group "g": detector #1: plugin "missing_module": '
        "cannot load plugin missing_module (entry point: broken-plugins 1.0, "
        "no_such_module_anywhere:Plugin): ModuleNotFoundError: No module named "
        "'no_such_module_anywhere'"
    )
    assert problems["wrong_name"].endswith(
        f"plugin wrong_name (entry point: broken-plugins 1.0, {module}:Named): the class's "
        "name is 'something_else'; it must be the entry point's name"
    )
    assert problems["not_a_plugin"].endswith("is 42, not a subclass of oomd.plugin.Plugin")


# -- --plugin-dir -----------------------------------------------------------------------


def test_plugin_dir_registers_the_named_plugin_classes_each_file_defines(
    tmp_path: Path, harness: Harness
) -> None:
    directory = plugin_dir(
        tmp_path,
        {
            "always.py": DETECTOR_FILE,
            # Imported classes are not registered again; files other than *.py and
            # dot-files are not loaded.
            "reexport.py": "from oomd.plugins.basic import Continue\n",
            "notes.txt": "raise SystemExit(1)\n",
            ".hidden.py": "raise SystemExit(1)\n",
        },
    )
    warnings = registry.discover([str(directory)], entry_points=False)
    assert warnings == [f"plugin dir file {directory}/reexport.py defines no plugin class"]
    assert [(n, o) for n, o in registry.listing() if o is not None] == [
        ("always_fires", f"plugin dir: {directory}/always.py")
    ]
    detector = harness.detector("always_fires")
    assert detector.origin == f"plugin dir: {directory}/always.py"
    assert harness.run(detector).name == "CONTINUE"
    # No byte code is written into the plugin directory.
    assert sorted(os.listdir(directory)) == [".hidden.py", "always.py", "notes.txt", "reexport.py"]


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        (
            {"bad.py": "x = 1\ndef f(:\n"},
            "plugin dir file {dir}/bad.py failed to load (line 2): SyntaxError",
        ),
        (
            {"bad.py": "import os\nraise RuntimeError('no config')\n"},
            "plugin dir file {dir}/bad.py failed to load (line 2): RuntimeError: no config",
        ),
        (
            {"bad.py": "import sys\nsys.exit(3)\n"},
            "plugin dir file {dir}/bad.py failed to load (line 2): SystemExit: 3",
        ),
        (
            {"a.py": DETECTOR_FILE, "b.py": DETECTOR_FILE},
            "plugin always_fires is registered twice: plugin dir: {dir}/a.py and "
            "plugin dir: {dir}/b.py",
        ),
        (
            {"p.py": "from oomd.plugin import Detector\nclass P(Detector):\n    name = 'stop'\n"},
            "plugin stop (plugin dir: {dir}/p.py) has the name of a built-in plugin; rename it",
        ),
    ],
)
def test_plugin_dir_problems_are_reported_with_the_file(
    tmp_path: Path, files: dict[str, str], problem: str
) -> None:
    directory = plugin_dir(tmp_path, files)
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover([str(directory)], entry_points=False)
    [message] = excinfo.value.problems
    assert message.startswith(problem.format(dir=directory)), message


def test_plugin_dir_writable_by_group_or_others_is_refused(tmp_path: Path) -> None:
    directory = plugin_dir(tmp_path, {"always.py": DETECTOR_FILE}, mode=0o775)
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover([str(directory)], entry_points=False)
    assert excinfo.value.problems == [
        f"refusing plugin dir {directory}: writable by its group or others (mode 0775)"
    ]


def test_plugin_file_writable_by_others_is_refused(tmp_path: Path) -> None:
    directory = plugin_dir(tmp_path, {"always.py": DETECTOR_FILE, "ok.py": "X = 1\n"})
    (directory / "always.py").chmod(0o646)
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover([str(directory)], entry_points=False)
    assert excinfo.value.problems == [
        f"refusing plugin dir file {directory}/always.py: writable by its group or others "
        "(mode 0646)"
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files to another user")
def test_plugin_dir_or_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    directory = plugin_dir(tmp_path, {"always.py": DETECTOR_FILE})
    os.chown(directory / "always.py", 65534, 65534)
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover([str(directory)], entry_points=False)
    assert excinfo.value.problems == [
        f"refusing plugin dir file {directory}/always.py: owned by uid 65534, not root"
    ]
    os.chown(directory / "always.py", 0, 0)
    os.chown(directory, 65534, 65534)
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover([str(directory)], entry_points=False)
    assert excinfo.value.problems == [
        f"refusing plugin dir {directory}: owned by uid 65534, not root"
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_plugin_dir_whose_parent_another_user_owns_or_all_can_write_is_refused(
    tmp_path: Path,
) -> None:
    """Issue 12 item 9: whoever can write to a parent can swap the plugin dir; as sshd,
    every directory up to / is checked, a sticky one writable by all (/tmp) excepted."""
    parent = tmp_path / "home"
    parent.mkdir()
    directory = plugin_dir(parent, {"always.py": DETECTOR_FILE})
    os.chown(parent, 65534, 65534)
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover([str(directory)], entry_points=False)
    assert excinfo.value.problems == [
        f"refusing plugin dir {directory}: {parent} is owned by uid 65534, not root"
    ]
    os.chown(parent, 0, 0)
    parent.chmod(0o777)
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover([str(directory)], entry_points=False)
    assert excinfo.value.problems == [
        f"refusing plugin dir {directory}: {parent} is writable by its group or others (mode 0777)"
    ]
    parent.chmod(0o1777)
    assert registry.discover([str(directory)], entry_points=False) == []
    assert registry.get("always_fires") is not None


def test_plugin_dir_reached_through_a_symlink_is_checked_where_it_lies(tmp_path: Path) -> None:
    """The link itself may be root's; what it points into is what is checked."""
    open_parent = tmp_path / "open"
    open_parent.mkdir()
    directory = plugin_dir(open_parent, {"always.py": DETECTOR_FILE})
    open_parent.chmod(0o777)
    link = tmp_path / "plugins"
    link.symlink_to(directory)
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover([str(link)], entry_points=False)
    assert excinfo.value.problems == [
        f"refusing plugin dir {link}: {open_parent} is writable by its group or others (mode 0777)"
    ]


def test_plugin_file_linked_from_an_untrusted_directory_is_refused(tmp_path: Path) -> None:
    elsewhere = plugin_dir(tmp_path, {"always.py": DETECTOR_FILE}, mode=0o777)
    directory = plugin_dir(tmp_path, {})
    (directory / "always.py").symlink_to(elsewhere / "always.py")
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover([str(directory)], entry_points=False)
    assert excinfo.value.problems == [
        f"refusing plugin dir file {directory}/always.py: {elsewhere} is writable by its "
        "group or others (mode 0777)"
    ]


def test_missing_plugin_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(registry.PluginLoadError) as excinfo:
        registry.discover([str(tmp_path / "nope")], entry_points=False)
    assert excinfo.value.problems == [f"plugin dir {tmp_path}/nope: No such file or directory"]


# -- -c ------------------------------------------------------------------------------------


def check(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = daemon.check_config(parse_args(argv))
    captured = capfd.readouterr()
    return code, captured.err.splitlines() + captured.out.splitlines()


def test_check_config_uses_plugin_dirs_and_entry_points_and_names_origins(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    directory = plugin_dir(tmp_path, {"always.py": DETECTOR_FILE})
    config = tmp_path / "oomd.json"
    config.write_text(
        """{"rulesets": [{"name": "r",
            "detectors": [["g", {"name": "always_fires"},
                                {"name": "near_memory_limit", "args": {"cgroup": "w"}}]],
            "actions": [{"name": "kill_by_process_count", "args": {"cgroup": "w/*"}}]}]}"""
    )
    fs = tmp_path / "cgroup"
    (fs / "w").mkdir(parents=True)
    (fs / "cgroup.controllers").write_text("cpu io memory pids\n")
    code, lines = check(["-c", str(config), "--plugin-dir", str(directory), "-f", str(fs)], capfd)
    assert code == 0, lines
    assert lines[-1] == "Config is valid"
    assert f"    always_fires (plugin dir: {directory}/always.py): " in lines
    assert any(
        line.startswith(
            f"    near_memory_limit (entry point: {EXAMPLE_DIST} 0.1.0, "
            f"{EXAMPLE_PLUGINS['near_memory_limit']}): cgroup=w "
        )
        for line in lines
    ), lines
    # Without the plugin dir the plugin is unknown.
    code, lines = check(["-c", str(config)], capfd)
    assert code == 1
    assert lines[0].endswith(
        'plugin "always_fires": Could not locate plugin=always_fires in plugin registry'
    )


def test_check_config_reports_bad_args_of_a_third_party_plugin(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "oomd.json"
    config.write_text(
        """{"rulesets": [{"name": "r",
            "detectors": [["g", {"name": "near_memory_limit",
                                 "args": {"cgroup": "w", "percent": "0"}}]],
            "actions": [{"name": "kill_by_process_count",
                         "args": {"cgroup": "w/*", "min_processes": "-2"}}]}]}"""
    )
    code, lines = check(["-c", str(config)], capfd)
    assert code == 1
    assert lines == [
        f'{config}: ruleset "r": detector group "g": detector #1: plugin "near_memory_limit": '
        'arg "percent": must be between 1 and 100, not 0',
        f'{config}: ruleset "r": action #1: plugin "kill_by_process_count": '
        'arg "min_processes": must be positive, not -2',
        "Config is not valid",
    ]


def test_check_config_with_a_refused_plugin_dir_is_not_valid(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    directory = plugin_dir(tmp_path, {"always.py": DETECTOR_FILE}, mode=0o777)
    config = tmp_path / "oomd.json"
    config.write_text('{"rulesets": []}')
    code, lines = check(["-c", str(config), "--plugin-dir", str(directory)], capfd)
    assert code == 1
    assert lines == [
        f"refusing plugin dir {directory}: writable by its group or others (mode 0777)",
        "Config is not valid",
    ]
