"""The markets panel with many markets, under Textual's Pilot (the real app on a still first frame): positions first,
the largest first, then the markets with open orders; the panel says how many markets, positions and orders there
are and how many rows are out of sight; `/` filters by name, and while the filter field has the keys h, c and x are
letters in it (Esc clears it and gives the keys back)."""

from __future__ import annotations

from eventually import eventually
from still import fifty_markets

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
