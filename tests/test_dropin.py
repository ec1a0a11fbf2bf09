"""Drop-in configs through the real inotify path on a tmp dir (upstream
dropin/FsDropInService.cpp, docs/drop_in_configs.md; ConfigCompilerTest DropInConfig,
MultipleDropInConfigOrdering, DisablesBase, PermissionDenied, RemoveDropIn,
MultipleRulesetDropin; FsDropInServiceTest AddRemove, LoadExisting, RecreateDir)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from oomd.config.compiler import compile_dropin
from oomd.config.ir import ConfigIR
from oomd.dropin import DropInService
from oomd.stats import DROPIN_ADDED, DROPIN_FIRED
from tests.support.harness import Harness, plugin

MB = 1 << 20


def kill(cgroup: str) -> dict[str, Any]:
    return plugin("kill_by_memory_size_or_growth", cgroup=cgroup, dry=True)


BASE: dict[str, Any] = {
    "rulesets": [
        {
            "name": "protect",
            "drop-in": {"detectors": True, "actions": True},
            "detectors": [["base group", plugin("continue")]],
            "actions": [kill("base.slice/*")],
            "post_action_delay": 0,
        },
        {
            "name": "locked",
            "detectors": [["locked group", plugin("stop")]],
            "actions": [kill("base.slice/*")],
        },
    ]
}


@pytest.fixture
def setup(harness: Harness, tmp_path: Path) -> tuple[Harness, DropInService, Path]:
    for name in ("base", "a", "b"):
        harness.tree.cgroup(f"{name}.slice/victim", current=100 * MB, stat={"anon": 1})
    harness.stats.set(DROPIN_ADDED, 0)
    harness.stats.set(DROPIN_FIRED, 0)
    harness.load(BASE)
    assert harness.engine is not None
    harness.engine.stats = harness.stats
    directory = tmp_path / "dropins"
    directory.mkdir()
    base_ir = harness.ir

    def compile_unit(ir: ConfigIR) -> Any:
        return compile_dropin(base_ir, ir, harness.env)

    return harness, DropInService(str(directory), harness.engine, compile_unit), directory


def write(directory: Path, name: str, config: dict[str, Any], mode: int = 0o644) -> Path:
    path = directory / name
    path.write_text(json.dumps(config))
    path.chmod(mode)
    return path


def dropin(
    name: str = "protect", group: str | None = None, victim: str | None = None, **keys: Any
) -> dict[str, Any]:
    ruleset: dict[str, Any] = {"name": name, **keys}
    if group is not None:
        ruleset["detectors"] = [[group, plugin("continue")]]
    if victim is not None:
        ruleset["actions"] = [kill(f"{victim}.slice/*")]
    return {"rulesets": [ruleset]}


def tick(h: Harness, service: DropInService) -> list[str]:
    """One tick with drop-ins applied first; returns 'group->victim' per kill line."""
    before = len(h.kills)
    service.poll()
    h.tick()
    out = []
    for line in h.kills[before:]:
        fields = line.split()
        group = line.split("detectorgroup:[")[1].split("]")[0]
        out.append(f"{group}->{fields[5].split('/')[0]}")
    return out


def test_existing_files_are_loaded_at_start_and_run_before_the_base(setup: Any) -> None:
    """FsDropInServiceTest.LoadExisting + DropInConfig: a drop-in replacing actions runs
    its actions, before the base ruleset."""
    h, service, directory = setup
    write(directory, "10-a.json", dropin(victim="a"))
    assert tick(h, service) == ["base group->a.slice", "base group->base.slice"]
    assert h.stats.get(DROPIN_ADDED) == 1
    assert h.stats.get(DROPIN_FIRED) == 1


def test_newest_drop_in_runs_first(setup: Any) -> None:
    """MultipleDropInConfigOrdering: LIFO."""
    h, service, directory = setup
    tick(h, service)
    write(directory, "a.json", dropin(group="from a"))
    tick(h, service)
    write(directory, "b.json", dropin(group="from b"))
    assert tick(h, service) == [
        "from b->base.slice",
        "from a->base.slice",
        "base group->base.slice",
    ]


def test_modified_file_replaces_its_drop_in_and_moves_it_to_the_front(setup: Any) -> None:
    """RemoveAndReAdd: re-adding a tag makes it newest."""
    h, service, directory = setup
    tick(h, service)
    write(directory, "a.json", dropin(group="a v1"))
    write(directory, "b.json", dropin(group="b"))
    tick(h, service)
    write(directory, "a.json", dropin(group="a v2"))
    assert tick(h, service) == ["a v2->base.slice", "b->base.slice", "base group->base.slice"]
    assert h.stats.get(DROPIN_ADDED) == 2


def test_removed_file_removes_its_drop_in(setup: Any) -> None:
    """FsDropInServiceTest.AddRemove / RemoveDropIn."""
    h, service, directory = setup
    path = write(directory, "a.json", dropin(group="a"))
    assert tick(h, service)[0] == "a->base.slice"
    path.unlink()
    assert tick(h, service) == ["base group->base.slice"]
    assert h.stats.get(DROPIN_ADDED) == 0


def test_disable_on_drop_in_silences_the_base_while_targeted(setup: Any) -> None:
    """DisablesBase."""
    h, service, directory = setup
    h.load(
        {
            "rulesets": [
                {
                    **BASE["rulesets"][0],
                    "drop-in": {"detectors": True, "actions": True, "disable-on-drop-in": True},
                }
            ]
        }
    )
    assert h.engine is not None
    service.engine = h.engine
    base_ir = h.ir
    service.compile_unit = lambda ir: compile_dropin(base_ir, ir, h.env)
    path = write(directory, "a.json", dropin(group="a"))
    assert tick(h, service) == ["a->base.slice"]
    path.unlink()
    assert tick(h, service) == ["base group->base.slice"]


def test_overriding_without_permission_is_rejected_and_rules_stay(setup: Any, oolog: Path) -> None:
    """PermissionDenied: the base "locked" allows no drop-ins."""
    h, service, directory = setup
    write(directory, "a.json", dropin(name="locked", group="sneaky"))
    assert tick(h, service) == ["base group->base.slice"]
    text = oolog.read_text()
    assert "Error: DetectorGroup drop-in configs disabled" in text
    assert (
        "Failed to inject drop in config=a.json into engine; the running rules are unchanged"
        in text
    )


def test_unknown_target_rejects_the_whole_file(setup: Any, oolog: Path) -> None:
    h, service, directory = setup
    config = dropin(group="x")
    config["rulesets"].append({"name": "nope", "detectors": [["g", plugin("continue")]]})
    write(directory, "a.json", config)
    assert tick(h, service) == ["base group->base.slice"]
    assert "Could not locate targeted ruleset=nope" in oolog.read_text()


def test_one_file_may_target_several_rulesets(setup: Any) -> None:
    """MultipleRulesetDropin."""
    h, service, directory = setup
    h.load(
        {
            "rulesets": [
                {**BASE["rulesets"][0], "name": "first"},
                {**BASE["rulesets"][0], "name": "second"},
            ]
        }
    )
    assert h.engine is not None
    service.engine = h.engine
    base_ir = h.ir
    service.compile_unit = lambda ir: compile_dropin(base_ir, ir, h.env)
    config = {
        "rulesets": [
            dropin("first", group="g1")["rulesets"][0],
            dropin("second", group="g2")["rulesets"][0],
        ]
    }
    write(directory, "a.json", config)
    assert tick(h, service) == [
        "g1->base.slice",
        "base group->base.slice",
        "g2->base.slice",
        "base group->base.slice",
    ]


def test_broken_update_keeps_the_previous_version(setup: Any, oolog: Path) -> None:
    """Beyond upstream: a file that no longer parses leaves its running drop-in alone."""
    h, service, directory = setup
    write(directory, "a.json", dropin(group="good"))
    tick(h, service)
    (directory / "a.json").write_text('{"rulesets": [ {"name": ')
    assert tick(h, service)[0] == "good->base.slice"
    assert "invalid JSON" in oolog.read_text()


@pytest.mark.parametrize(("uid", "mode"), [(65534, 0o644), (0, 0o664), (0, 0o646)])
def test_files_not_owned_by_root_or_group_writable_are_refused(
    setup: Any, oolog: Path, uid: int, mode: int
) -> None:
    h, service, directory = setup
    path = write(directory, "a.json", dropin(group="evil"), mode=mode)
    os.chown(path, uid, 0)
    assert tick(h, service) == ["base group->base.slice"]
    assert "Refusing drop in config=" in oolog.read_text()


def test_dot_files_are_ignored(setup: Any) -> None:
    h, service, directory = setup
    write(directory, ".a.json.swp", dropin(group="hidden"))
    assert tick(h, service) == ["base group->base.slice"]


def test_file_created_in_place_by_a_link_is_picked_up(setup: Any, tmp_path: Path) -> None:
    """Beyond upstream: IN_CREATE alone (a hard link gives no write event) counts."""
    h, service, directory = setup
    tick(h, service)
    outside = write(tmp_path, "staged.json", dropin(group="linked"))
    os.link(outside, directory / "a.json")
    assert tick(h, service)[0] == "linked->base.slice"


def test_renamed_into_the_directory_is_picked_up_and_renamed_out_removed(
    setup: Any, tmp_path: Path
) -> None:
    h, service, directory = setup
    tick(h, service)
    staged = write(tmp_path, "staged.json", dropin(group="moved"))
    os.rename(staged, directory / "a.json")
    assert tick(h, service)[0] == "moved->base.slice"
    os.rename(directory / "a.json", tmp_path / "back.json")
    assert tick(h, service) == ["base group->base.slice"]


def test_missing_directory_is_retried_until_it_appears(
    harness: Harness, tmp_path: Path, oolog: Path
) -> None:
    """FsDropInServiceTest.RecreateDir: deleting and recreating the directory resumes
    watching and reloads the files."""
    for name in ("base", "a"):
        harness.tree.cgroup(f"{name}.slice/victim", current=100 * MB, stat={"anon": 1})
    harness.load(BASE)
    assert harness.engine is not None
    base_ir = harness.ir
    directory = tmp_path / "later"
    service = DropInService(
        str(directory), harness.engine, lambda ir: compile_dropin(base_ir, ir, harness.env)
    )
    assert tick(harness, service) == ["base group->base.slice"]
    assert f"Error: {directory} is not a directory" in oolog.read_text()
    directory.mkdir()
    write(directory, "a.json", dropin(group="late"))
    assert tick(harness, service)[0] == "late->base.slice"
    for f in directory.iterdir():
        f.unlink()
    directory.rmdir()
    assert tick(harness, service) == ["base group->base.slice"]
    directory.mkdir()
    write(directory, "b.json", dropin(group="again"))
    assert tick(harness, service)[0] == "again->base.slice"


def test_missing_directory_is_reported_once_not_every_tick(
    harness: Harness, tmp_path: Path, oolog: Path
) -> None:
    """Upstream logs the error on every tick until the directory appears."""
    harness.load(BASE)
    assert harness.engine is not None
    base_ir = harness.ir
    service = DropInService(
        str(tmp_path / "absent"),
        harness.engine,
        lambda ir: compile_dropin(base_ir, ir, harness.env),
    )
    for _ in range(3):
        service.poll()
    assert oolog.read_text().count("is not a directory") == 1


# -- the directory chain (issue 12 item 9) ---------------------------------------------


def test_world_writable_directory_is_refused_with_the_symlink_planted_in_it(
    setup: Any, tmp_path: Path, oolog: Path
) -> None:
    """The audit's scenario: in a drop-in directory anyone can write to, another user
    planted a symlink to a root-owned config (which passes the file check): refused,
    nothing applied, logged once, and picked up once the directory is fixed."""
    h, service, directory = setup
    root_owned = write(tmp_path, "root-owned.json", dropin(group="planted"))
    directory.chmod(0o777)
    (directory / "a.json").symlink_to(root_owned)
    assert tick(h, service) == ["base group->base.slice"]
    assert tick(h, service) == ["base group->base.slice"]
    refused = [line for line in oolog.read_text().splitlines() if "Refusing drop-in" in line]
    assert len(refused) == 1, refused
    assert (
        f"Refusing drop-in directory {directory}: writable by its group or others (mode 0777)"
        in refused[0]
    )
    assert "injected" not in oolog.read_text()
    directory.chmod(0o755)
    assert tick(h, service)[0] == "planted->base.slice"


def test_directory_made_writable_after_start_refuses_new_files(setup: Any, oolog: Path) -> None:
    h, service, directory = setup
    assert tick(h, service) == ["base group->base.slice"]
    directory.chmod(0o757)
    write(directory, "a.json", dropin(group="late"))
    assert tick(h, service) == ["base group->base.slice"]
    assert (
        f"Refusing drop in config={directory}/a.json: {directory} is writable by its group "
        "or others (mode 0757)"
    ) in oolog.read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_directory_whose_parent_another_user_owns_is_refused(
    harness: Harness, tmp_path: Path, oolog: Path
) -> None:
    """That user could rename the drop-in directory away and put their own there."""
    harness.tree.cgroup("base.slice/victim", current=100 * MB, stat={"anon": 1})
    harness.load(BASE)
    assert harness.engine is not None
    base_ir = harness.ir
    parent = tmp_path / "home"
    directory = parent / "dropins"
    directory.mkdir(parents=True)
    write(directory, "a.json", dropin(group="theirs"))
    os.chown(parent, 65534, 65534)
    service = DropInService(
        str(directory), harness.engine, lambda ir: compile_dropin(base_ir, ir, harness.env)
    )
    assert tick(harness, service) == ["base group->base.slice"]
    assert (
        f"Refusing drop-in directory {directory}: {parent} is owned by uid 65534, not root"
    ) in oolog.read_text()
    os.chown(parent, 0, 0)
    assert tick(harness, service)[0] == "theirs->base.slice"


def test_a_sticky_ancestor_writable_by_all_is_allowed_but_not_as_the_directory(
    harness: Harness, tmp_path: Path, oolog: Path
) -> None:
    """/tmp (1777) may lie above the directory, as it does above every tmp_path."""
    harness.tree.cgroup("base.slice/victim", current=100 * MB, stat={"anon": 1})
    harness.load(BASE)
    assert harness.engine is not None
    base_ir = harness.ir
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    for directory, group, mode in ((sticky / "dropins", "sticky", 0o755), (sticky, None, 0o1777)):
        directory.mkdir(exist_ok=True)
        directory.chmod(mode)
        write(directory, "a.json", dropin(group=group or "leaf"))
        service = DropInService(
            str(directory), harness.engine, lambda ir: compile_dropin(base_ir, ir, harness.env)
        )
        kills = tick(harness, service)
        service.close()
        if group is not None:
            assert kills[0] == "sticky->base.slice"
            harness.engine.remove_dropin("a.json")
        else:
            assert kills == ["base group->base.slice"]
            assert f"Refusing drop-in directory {sticky}: writable by its group or others " in (
                oolog.read_text()
            )
