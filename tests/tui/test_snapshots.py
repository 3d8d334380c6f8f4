"""Screen snapshots (pytest-textual-snapshot): the main screen as an operator sees it, normal, HALTED by a
monitor, with a CRIT alert waiting, in monochrome (NO_COLOR), while the venue is still connecting, with a live
session's balances (one line), at 80×24, with
two chat bots (one failing) at 120×36; the
go/no-go checklist at 80×24 with the selected check whole under it; the strategies at 80×24; and the too-small
screen. After a deliberate
change to the screen: `.venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update`, then look at the
SVGs in tests/tui/__snapshots__/ before committing them."""

from __future__ import annotations

from still import NOW, StillCockpit, alert, fifty_markets, halted_by_ws_stale, live_balances

from engine.gate.checklist import Check, Checklist, Status
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


def test_main_screen_with_live_balances(snap_compare, tmp_path):
    """The balances of a live session (the quote, two positions' assets with their stops, fee dust) stay on one
    line at 80 columns: the panels under it keep their places."""
    assert snap_compare(StillCockpit(tmp_path, events=[live_balances()]), terminal_size=(80, 24))


def test_main_screen_with_fifty_markets(snap_compare, tmp_path):
    """Positions first (the largest first), then markets with open orders; the panel says how many there are and
    how many are out of sight."""
    assert snap_compare(fifty_markets(tmp_path), terminal_size=(80, 24))


def test_main_screen_with_chat_bots_one_failing(snap_compare, tmp_path):
    # Each chat bot's state ends the health line: connected plain, failing in red (issue 21).
    app = StillCockpit(tmp_path, chat=("telegram connected", "slack failing"))
    assert snap_compare(app, terminal_size=(120, 36))


def test_too_small(snap_compare, tmp_path):
    assert snap_compare(StillCockpit(tmp_path), terminal_size=(60, 20))


def test_main_screen_while_the_venue_is_connecting(snap_compare, tmp_path):
    app = StillCockpit(tmp_path)
    app.first.connected = None  # the engine is up, the venue not yet: CONNECTING, never a guessed ACTIVE
    assert snap_compare(app, terminal_size=(80, 24))


def test_checklist_screen_shows_the_selected_check_whole(snap_compare, tmp_path):
    checks = (
        Check("mode", "Mode is what the operator asked for", Status.PASS, "PAPER: orders go to the built-in simulator"),
        Check(
            "alert_sinks",
            "Alert sinks configured",
            Status.WARN,
            "no notification URL: alerts reach the screen and the logs only",
            fix="add [alerts] notify (e.g. COCKPIT_ALERTS__NOTIFY with a Telegram URL)",
        ),
        Check(
            "stability",
            "Stability over the last 24 h of paper / dry-run",
            Status.WARN,
            "only 0.0 h of paper / dry-run in the last 24 h; no order ended: fill rate unknown",
            {"covered_h": 0.0},
            "run paper or dry-run for 24 h without CRIT alerts, then check again (runbook 000 §1)",
        ),
    )
    app = StillCockpit(tmp_path)
    app.first.checklist = Checklist(checks, "paper", "sim", NOW.isoformat(), "engine:start", 12.0).to_dict()
    assert snap_compare(app, terminal_size=(80, 24), press=["g", "down"])


def test_strategies_screen(snap_compare, tmp_path):
    """Each strategy on or off (off: until when, and why under the table), its symbols, candles and record."""
    app = StillCockpit(tmp_path)
    app.link.answers["strategies"] = [
        {
            "strategy": "rsi_dip",
            "enabled": True,
            "symbols": ["BTC/USDT", "ETH/USDT"],
            "timeframe": "1m",
            "round_trips": 12,
            "wins": 7,
            "losses": 5,
            "consecutive_losses": 1,
            "realised_pnl": "18.4215",
            "win_rate": "0.5833",
            "reason": None,
        },
        {
            "strategy": "ladder",
            "enabled": False,
            "symbols": ["BTC/USDT"],
            "timeframe": None,
            "round_trips": 3,
            "wins": 0,
            "losses": 3,
            "consecutive_losses": 3,
            "realised_pnl": "-6.02",
            "win_rate": "0",
            "disabled_by": "failure",
            "disabled_at": "2026-11-30T14:20:02+00:00",
            "disabled_until": "2026-11-30T20:20:02+00:00",
            "reason": "raised ZeroDivisionError: division by zero",
        },
    ]
    assert snap_compare(app, terminal_size=(80, 24), press=["S", "down"])
