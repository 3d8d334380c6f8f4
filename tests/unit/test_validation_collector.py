"""A validation run spaces Python's garbage collections while it lasts and gives the thresholds back after, also when
it fails (decision GATE-23)."""

from __future__ import annotations

import gc

import pytest

from engine.core.validation import COLLECT_EVERY, collector_spaced


def test_a_validation_run_spaces_the_collector_and_gives_it_back():
    before = gc.get_threshold()
    with collector_spaced():
        assert gc.get_threshold()[0] == COLLECT_EVERY > before[0]
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), collector_spaced():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
