"""The observability side of a real daemon on a fake tree: ``oomd status`` over the
runtime-dir socket, ``oomd explain``, a Prometheus scrape, JSON log lines, post-kill
hooks."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.daemon import Daemon, Daemons, run_oomd
from tests.support.harness import plugin, ruleset
from tests.support.tree import FakeTree


def _config(threshold: int = 20, **kill: str) -> dict[str, Any]:
    return {
        "rulesets": [
            ruleset(
                "protect",
                [
                    (
                        "pressure",
                        [
                            plugin(
                                "pressure_above",
                                cgroup="work.slice/*",
                                resource="memory",
                                threshold=str(threshold),
                                duration="2",
                            )
                        ],
                    )
                ],
                [
                    plugin(
                        "kill_by_memory_size_or_growth",
                        cgroup="work.slice/*",
                        dry="true",
                        post_action_delay="0",
                        **kill,
                    )
                ],
            )
        ]
    }


def _tree(tree: FakeTree) -> None:
    tree.cgroup("work.slice")
    for name, current, avg10 in (("a", 100 << 20, 30.0), ("b", 700 << 20, 10.0)):
        tree.cgroup(
            f"work.slice/{name}",
            current=current,
            pressure=(avg10, avg10, avg10),
            stat={"anon": current},
            populated=True,
        )


def _start(
    daemons: Daemons, tree: FakeTree, tmp_path: Path, config: dict[str, Any], *args: str
) -> Daemon:
    cfg = tmp_path / "oomd.json"
    cfg.write_text(json.dumps(config))
    daemon = daemons.start(
        tree.root, tmp_path, "-i", "1", "-D", str(tmp_path / "run"), "-C", str(cfg), *args
    )
    assert daemon.wait_for(lambda: "Running oomd" in daemon.stderr()), daemon.stderr()
    return daemon


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_status_json_from_a_running_daemon(
    tree: FakeTree, tmp_path: Path, daemons: Daemons
) -> None:
    _tree(tree)
    daemon = _start(daemons, tree, tmp_path, _config(threshold=95))
    run = str(tmp_path / "run")
    assert oct(os.stat(f"{run}/oomd-status.socket").st_mode & 0o777) == "0o600"
    time.sleep(2.5)
    result = run_oomd("status", "-D", run, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    rs = doc["rulesets"][0]
    assert rs["name"] == "protect" and rs["armed"] is True
    group = rs["detector_groups"][0]
    assert group["firing"] is False
    view = group["detectors"][0]
    # The most pressured cgroup by 3*avg10+2*avg60+avg300, its avg10 against 95%.
    assert (view["cgroup"], view["reading"], view["threshold"]) == ("work.slice/a", 30.0, 95)
    assert (view["over"], view["held_s"], view["duration_s"]) == (False, 0, 2)
    action = rs["actions"][0]
    assert [c["cgroup"] for c in action["top"]] == ["work.slice/b", "work.slice/a"]
    assert action["top"][0]["phase"] == "size_threshold"
    assert action["victim"]["cgroup"] == "work.slice/b"
    assert "based on size > 50% of sibling total 800MB" in action["victim"]["reason"]
    assert doc["counters"]["ticks"]["scheduled"] >= 2
    assert doc["last_kill"] is None
    text = run_oomd("status", "-D", run)
    assert text.returncode == 0, text.stderr
    assert 'ruleset "protect": armed' in text.stdout
    assert "pressure_above work.slice/a memory full avg10 30.00/95% for 0s of 2s" in text.stdout
    assert "would kill work.slice/b" in text.stdout
    # upstream's -d still answers, byte-compatible (its own socket).
    dump = run_oomd("-d", "-D", run)
    assert dump.returncode == 0 and '"oomd.kills" : 0' in dump.stdout
    assert daemon.proc.poll() is None


def test_status_without_a_daemon_says_so(tmp_path: Path) -> None:
    result = run_oomd("status", "-D", str(tmp_path))
    assert result.returncode == 1
    assert "oomd-status.socket" in result.stderr and "is oomd running" in result.stderr


def test_explain_on_a_fake_tree(tree: FakeTree, tmp_path: Path) -> None:
    _tree(tree)
    cfg = tmp_path / "oomd.json"
    cfg.write_text(json.dumps(_config(threshold=20)))
    result = run_oomd("explain", "-C", str(cfg), "-f", tree.fs, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    rs = doc["rulesets"][0]
    view = rs["detector_groups"][0]["detectors"][0]
    assert (view["reading"], view["over"], view["held_s"]) == (30.0, True, 0)
    assert rs["actions"][0]["victim"]["cgroup"] == "work.slice/b"
    assert rs["actions"][0]["dry"] is True


def test_metrics_scrape_counts_a_dry_kill(tree: FakeTree, tmp_path: Path, daemons: Daemons) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    _tree(tree)
    port = _free_port()
    daemon = _start(
        daemons, tree, tmp_path, _config(threshold=20), "--metrics-address", f"127.0.0.1:{port}"
    )

    def scrape() -> dict[str, list[Any]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return {f.name: f.samples for f in text_string_to_metric_families(text)}

    assert daemon.wait_for(lambda: any("(dry)" in line for line in daemon.kmsg())), daemon.stderr()
    metrics = scrape()
    kills = [s for s in metrics["oomd_kills"] if s.name == "oomd_kills_total"]
    assert kills and kills[0].labels == {
        "ruleset": "protect",
        "detector_group": "pressure",
        "killer": "kill_by_memory_size_or_growth",
        "dry": "true",
    }
    first = kills[0].value
    assert first >= 1
    assert any(s.labels == {"kind": "scheduled"} and s.value >= 1 for s in metrics["oomd_ticks"])
    assert metrics["oomd_last_kill_timestamp_seconds"][0].value > 0
    firing = metrics["oomd_detector_group_firing"][0]
    assert firing.labels == {"ruleset": "protect", "detector_group": "pressure"}
    avg10 = {s.labels["cgroup"]: s.value for s in metrics["oomd_cgroup_pressure_memory_full_avg10"]}
    assert avg10 == {"work.slice/a": 30.0, "work.slice/b": 10.0}
    assert any(
        s.name == "oomd_tick_duration_seconds_count" for s in metrics["oomd_tick_duration_seconds"]
    )
    assert daemon.wait_for(
        lambda: (
            next(s.value for s in scrape()["oomd_kills"] if s.name == "oomd_kills_total") > first
        )
    )


def test_metrics_address_without_the_library_or_with_a_bad_address(tmp_path: Path) -> None:
    bad = run_oomd("--metrics-address", "nonsense", "-C", str(tmp_path / "none.json"))
    assert bad.returncode == 1 and "HOST:PORT" in bad.stderr


def test_json_log_lines_carry_the_kill_fields(
    tree: FakeTree, tmp_path: Path, daemons: Daemons
) -> None:
    _tree(tree)
    daemon = _start(daemons, tree, tmp_path, _config(threshold=20), "--log-format", "json")
    assert daemon.wait_for(lambda: any("(dry)" in line for line in daemon.kmsg())), daemon.stderr()
    records = [json.loads(line) for line in daemon.stderr().splitlines() if line.startswith("{")]
    assert records and all({"time", "level", "source", "message"} <= r.keys() for r in records)
    kill = next(r for r in records if "kill_uuid" in r)
    assert kill["cgroup"] == "work.slice/b" and kill["dry"] is True
    assert kill["ruleset"] == "protect" and kill["detector_group"] == "pressure"
    assert kill["killer"] == "kill_by_memory_size_or_growth"
    assert kill["usage"] == 700 << 20 and kill["mem_pressure_avg10"] == 10.0
    assert re.fullmatch("[0-9a-f]{2,32}", kill["kill_uuid"]) and kill["message"] in daemon.kmsg()[0]


def test_postkill_hook_runs_with_the_kill_in_its_environment_and_a_hung_one_is_killed(
    tree: FakeTree, tmp_path: Path, daemons: Daemons
) -> None:
    _tree(tree)
    out = tmp_path / "hook.env"
    pidfile = tmp_path / "hung.pid"
    config = _config(threshold=20)
    config["postkill_hooks"] = [
        plugin(
            "exec_postkill_hook",
            cgroup="work.slice",
            argv=["sh", "-c", f"env | grep ^OOMD_ | sort > {out}.tmp && mv {out}.tmp {out}"],
        ),
        plugin(
            "exec_postkill_hook",
            cgroup="work.slice/b",
            timeout="2",
            argv=["sh", "-c", f"echo $$ >> {pidfile}; exec sleep 1000"],
        ),
    ]
    daemon = _start(daemons, tree, tmp_path, config)
    assert daemon.wait_for(out.exists), daemon.stderr()
    env = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert env["OOMD_CGROUP"] == "work.slice/b"
    assert env["OOMD_CGROUP_PATH"].endswith("/work.slice/b")
    assert (env["OOMD_RULESET"], env["OOMD_DETECTOR_GROUP"]) == ("protect", "pressure")
    assert env["OOMD_KILLER"] == "kill_by_memory_size_or_growth"
    assert (env["OOMD_USAGE"], env["OOMD_DRY"]) == (str(700 << 20), "1")
    assert re.fullmatch("[0-9a-f]{2,32}", env["OOMD_KILL_UUID"])
    assert daemon.wait_for(lambda: "killed: it ran past its timeout of 2s" in daemon.stderr())
    hung = int(pidfile.read_text().split()[0])
    assert (
        not os.path.exists(f"/proc/{hung}") or "zombie" in Path(f"/proc/{hung}/status").read_text()
    )
    # Ticks went on meanwhile: a dry kill every tick (post_action_delay 0).
    kills = [line for line in daemon.kmsg() if "(dry)" in line]
    assert len(kills) >= 3
    assert daemon.proc.poll() is None
