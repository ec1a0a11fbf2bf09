"""A bounded run of the tree fuzzer (tests/support/tree_fuzz.py) in the fast suite;
``tools/fuzz.py`` runs thousands of trees."""

from __future__ import annotations

import pytest

from tests.support.tree_fuzz import run_seed


@pytest.mark.parametrize("block", range(4))
def test_random_malformed_trees_never_break_a_kill_plugin(block: int) -> None:
    failures = [f for seed in range(block * 10, block * 10 + 10) for f in run_seed(seed)]
    assert failures == []
