"""Screen snapshots (pytest-textual-snapshot): the main screen as an operator sees it, normal, HALTED by a
monitor, with a CRIT alert waiting, in monochrome (NO_COLOR), at 80×24, and the too-small screen. After a
deliberate change to the screen: `.venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update`,
then look at the SVGs in tests/tui/__snapshots__/ before committing them."""

from __future__ import annotations

from still import StillCockpit, alert, halted_by_ws_stale

from engine.kernel.events import AlertRaised, Severity


def test_main_screen_normal(snap_compare, tmp_path):
    assert snap_compare(StillCockpit(tmp_path), terminal_size=(80, 24))


def test_main_screen_halted_by_a_monitor(snap_compare, tmp_path):
    assert snap_compare(StillCockpit(tmp_path, **halted_by_ws_stale()), terminal_size=(80, 24))


def test_main_screen_with_a_crit_alert(snap_compare, tmp_path):
    crit = alert(3, Severity.CRIT, "WS_STALE", "market data 61.2s old: closing every position", 5)
    app = StillCockpit(tmp_path, **halted_by_ws_stale())
    app.events.append(AlertRaised(crit))
    assert snap_compare(app, terminal_size=(80, 24))


def test_main_screen_monochrome(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(StillCockpit(tmp_path, **halted_by_ws_stale()), terminal_size=(80, 24))


def test_main_screen_larger_terminal(snap_compare, tmp_path):
    assert snap_compare(StillCockpit(tmp_path), terminal_size=(120, 36))


def test_too_small(snap_compare, tmp_path):
    assert snap_compare(StillCockpit(tmp_path), terminal_size=(60, 20))
