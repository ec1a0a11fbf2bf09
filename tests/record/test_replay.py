"""Replay: the real engine over a recorded trace reproduces the recorded decisions."""

from __future__ import annotations

from pathlib import Path

from oomd.replay import run_replay
from oomd.trace import Trace
from tests.record.scenario import record_incident, write_config


def test_replay_reproduces_the_recorded_kills(tmp_path: Path) -> None:
    out = str(tmp_path / "t.oomd-trace")
    kills = record_incident(tmp_path / "rec", out)
    assert kills, "the scenario must kill"
    trace = Trace(out)
    recorded = [(e.tick, e.line) for e in trace.events]
    assert [line for _, line in recorded] == kills
    result = run_replay(trace, write_config(tmp_path / "c.json"))
    assert [(k.tick, k.line) for k in result.kills] == recorded
    assert result.errors == []
    assert any(line.startswith("Picked ") for line in result.kills[0].ranking)
    # Deterministic: a second replay decides the same.
    again = run_replay(trace, write_config(tmp_path / "c.json"))
    assert [(k.tick, k.line, k.ranking) for k in again.kills] == [
        (k.tick, k.line, k.ranking) for k in result.kills
    ]
