"""The markets panel with many markets, under Textual's Pilot (the real app on a still first frame): positions first,
the largest first, then the markets with open orders; the panel says how many markets, positions and orders there
are and how many rows are out of sight; `/` filters by name, and while the filter field has the keys h, c and x are
letters in it (Esc clears it and gives the keys back). The balances line above it keeps to one line."""

from __future__ import annotations

from eventually import eventually
from still import StillCockpit, fifty_markets, live_balances
from textual.widgets import Static

from cockpit.bridge import EngineEvents
from widgets.keyed_table import KeyedTable


def rows(table: KeyedTable) -> list[str]:
    return sorted(table.keys, key=table.get_row_index)


async def test_positions_first_then_orders_and_the_panel_says_what_is_out_of_sight(tmp_path):
    app = fifty_markets(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.main_screen.query_one("#positions", KeyedTable)
        await eventually(lambda: table.row_count == 50 and "↓" in str(table.border_subtitle))
        await pilot.pause()
        order = rows(table)
        held = sorted(app.first.positions, key=lambda p: -p.value)
        assert order[:12] == [p.symbol for p in held]  # the largest position first
        with_orders = {o.symbol for o in app.first.orders} - {p.symbol for p in held}
        assert set(order[12 : 12 + len(with_orders)]) == with_orders
        assert str(table.border_subtitle).startswith("50 markets · 12 positions · 37 orders · ↓ ")
        alerts = app.main_screen.query_one("#alerts")
        assert alerts.region.bottom <= app.size.height - 1  # the alerts are still on the screen, above the footer

        await pilot.press("slash")
        for key in "sym0h":
            await pilot.press(key)
        field = app.main_screen.query_one("#market-filter")
        assert field.value == "sym0h"  # h typed, no halt sent (there is no engine: a halt would have failed loudly)
        await pilot.press("backspace")
        await eventually(lambda: table.row_count == 9)  # SYM01 .. SYM09
        assert "filter SYM0: 9 shown" in str(table.border_subtitle)
        await pilot.press("escape")
        await eventually(lambda: table.row_count == 50 and not field.display)
        assert app.focused is table and not field.has_focus


async def test_the_balances_line_keeps_to_one_line_and_the_panels_keep_their_places(tmp_path):
    """A live session's balances, wider than 80 columns in full, arrive after the first frame: the line is still
    one line and nothing under it moves (it wrapped to two, and the panels jumped down a row); wider terminals show
    more of it, 130 columns all of it."""
    app = StillCockpit(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.main_screen
        table = screen.query_one("#positions", KeyedTable)
        await eventually(lambda: table.row_count == 2)
        await pilot.pause()
        panels = ("#balances", "#positions", "#orders", "#bottom")
        before = [screen.query_one(p).region for p in panels]
        screen.post_message(EngineEvents([live_balances()], 0.0))
        line = screen.query_one("#balances", Static)

        def shown() -> str:
            return line.content.fit(line.content_size.width).plain

        await eventually(lambda: "BNB" in shown())  # the other assets' amounts in orders and the label left out
        await pilot.pause()
        assert [screen.query_one(p).region for p in panels] == before
        assert shown() == "USDT 9,864.95 (199.90 in orders) · BNB 0.0123 · BTC 0.00104 · ETH 0.02997"
        await pilot.resize_terminal(120, 30)
        await eventually(lambda: shown().startswith("balances"))
        assert shown() == "balances USDT 9,864.95 (199.90 in orders) · BNB 0.0123 · BTC 0.00104 · ETH 0.02997"
        await pilot.resize_terminal(130, 30)
        await eventually(lambda: "0.0299 in orders" in shown())
        assert line.region.height == 1
        assert shown() == (
            "balances USDT 9,864.95 (199.90 in orders) · BNB 0.0123 · BTC 0.00104 (0.00104 in orders) · ETH 0.02997"
            " (0.0299 in orders)"
        )


def test_the_balances_line_leaves_out_first_what_the_screen_shows_elsewhere():
    """Where even the short form does not fit, assets are left out and counted: first one whose whole amount is a
    position's size in the markets panel, then the least worth, one with no price first; the quote always stays."""
    from decimal import Decimal as D

    from cockpit.views import balances_line
    from engine.kernel.events import Balance, Position

    balances = [
        Balance("USDT", D("9665.05"), D("199.90")),
        Balance("BTC", D("0"), D("0.00104")),
        Balance("ETH", D("0.5"), D("0")),
        Balance("SOL", D("0.1"), D("0")),
        Balance("BNB", D("0.0123"), D("0")),
    ]
    positions = {"BTC/USDT": Position("BTC/USDT", D("0.00104"), D("64880.10"), D("65020.55"))}
    last = {"BTC/USDT": D("65020.55"), "ETH/USDT": D("3498.21"), "SOL/USDT": D("140")}
    line = balances_line(balances, "USDT", positions, last)
    assert [form.plain for form in line.forms[2:]] == [
        "USDT 9,864.95 (199.90 in orders) · BNB 0.0123 · BTC 0.00104 · ETH 0.5 · SOL 0.1",
        "USDT 9,864.95 (199.90 in orders) · BNB 0.0123 · ETH 0.5 · SOL 0.1 · +1 more",  # BTC: the markets panel's
        "USDT 9,864.95 (199.90 in orders) · ETH 0.5 · SOL 0.1 · +2 more",  # BNB: no price here
        "USDT 9,864.95 (199.90 in orders) · ETH 0.5 · +3 more",  # SOL: 14 USDT against ETH's 1,749
        "USDT 9,864.95 (199.90 in orders) · +4 more",
    ]
    assert line.fit(60).plain == "USDT 9,864.95 (199.90 in orders) · ETH 0.5 · +3 more"
    assert line.fit(20).plain == "USDT 9,864.95 (199.…"  # under 80 columns the too-small notice covers it
    assert balances_line([Balance("BTC", D("1"), D("0"))], "USDT").forms[-1].plain == "+1 more"  # no quote held
