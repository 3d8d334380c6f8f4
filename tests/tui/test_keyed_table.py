"""A changed cell redraws its own row and no other (decision SCALE-08): with 100 markets and 200 orders, a ticker or
an order's age drew every row in view again, and the screen's cost per event grew with the rows. The operator still
sees every change: the row in view shows the new value, a row out of sight shows it when scrolled to, rows that
change places are drawn in their new places, and a wider cell still widens its column."""

from __future__ import annotations

from textual.app import App, ComposeResult

from widgets.keyed_table import KeyedTable


class OneTable(App):
    def compose(self) -> ComposeResult:
        yield KeyedTable(("symbol", "mark"), id="t")


def shown(table: KeyedTable, key: str) -> str:
    """The text of the line that shows row ``key`` now (the header is line 0)."""
    y = table.get_row_index(key) + 1 - table.scroll_offset.y
    return "".join(segment.text for segment in table.render_line(y))


async def test_a_changed_cell_redraws_only_its_row_and_shows_the_new_value():
    app = OneTable()
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(KeyedTable)
        for i in range(60):
            table.upsert(f"S{i:02d}", (f"S{i:02d}", "100.00"))
        await pilot.pause()
        drawn: list[str] = []
        render = table._render_line_in_row

        def counted(row_key, *args, **kwargs):
            drawn.append(row_key.value)
            return render(row_key, *args, **kwargs)

        table._render_line_in_row = counted  # type: ignore[method-assign]
        table.upsert("S03", ("S03", "101.50"))
        await pilot.pause()
        assert drawn == ["S03"]  # one row rendered again, the other nine in view kept
        assert "101.50" in shown(table, "S03") and "100.00" in shown(table, "S04")

        drawn.clear()
        table.upsert("S50", ("S50", "99.25"))  # out of sight: nothing is drawn now
        await pilot.pause()
        assert drawn == []
        table.scroll_to(y=45, animate=False)
        await pilot.pause()
        assert "99.25" in shown(table, "S50")

        table.scroll_home(animate=False)
        await pilot.pause()
        cells: set[int] = set()
        render_cell = table._render_cell

        def cell_counted(row_index, *args, **kwargs):
            cells.add(row_index)
            return render_cell(row_index, *args, **kwargs)

        table._render_cell = cell_counted  # type: ignore[method-assign]
        table.order(["S01", "S00"])  # two rows change places: only they are rendered again, through Rich
        await pilot.pause()
        assert cells == {0, 1}
        assert "S01" in shown(table, "S01") and table.get_row_index("S01") == 0

        table.upsert("S04", ("S04", "100000.00"))  # wider: the column grows, the value is shown whole
        await pilot.pause()
        table.scroll_home(animate=False)
        await pilot.pause()
        assert "100000.00" in shown(table, "S04")
