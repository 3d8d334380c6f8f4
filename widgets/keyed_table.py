"""A DataTable kept in sync with a mapping of row key -> cells: cells update in place, never a rebuild."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

Cell = str | Text


class KeyedTable(DataTable):
    """Rows addressed by a stable key. ``sync`` adds, updates and removes rows to match what it is given;
    ``upsert`` and ``discard`` touch one row. A changed cell is updated where it is: under a storm of events the
    table does work per changed cell, not per row shown."""

    DEFAULT_CSS = """
    KeyedTable { height: 1fr; }
    """

    def __init__(
        self,
        columns: Sequence[str],
        sort_by: tuple[str, Callable[[Cell], object], bool] | None = None,
        count_as: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        # With ``count_as`` ("orders"), rows out of sight are said under the table: ``37 orders · ↓ 32 more``.
        self._count_as = count_as
        self._column_labels = tuple(columns)
        self._column_keys: list = []
        self._rows: dict[str, tuple[Cell, ...]] = {}
        # (column, key, reverse): rows kept in this order as they are added (e.g. newest first by id)
        self._sort_by = sort_by

    def _columns_ready(self) -> None:
        if not self._column_keys:
            self._column_keys = [self.add_column(label, key=label) for label in self._column_labels]

    def on_mount(self) -> None:
        self._columns_ready()

    def sync(self, rows: Mapping[str, Sequence[Cell]]) -> None:
        """Make the table show exactly ``rows``."""
        for key in [k for k in self._rows if k not in rows]:
            self.discard(key)
        for key, cells in rows.items():
            self.upsert(key, cells)

    def upsert(self, key: str, cells: Sequence[Cell]) -> None:
        """Add one row, or update the cells of it that changed; the others are left alone."""
        self._columns_ready()
        # Plain strings become Text here: DataTable would parse them as markup, and a message from a venue with
        # "[...]" in it must be shown as it is, never styled or refused (nor parsed again on every paint). Outside
        # text comes here already inert (cockpit/views.py: ``cells``, ``shown``): a widget knows nothing of the
        # engine, where the one helper lives.
        cells = tuple(Text(c) if isinstance(c, str) else c for c in cells)
        old = self._rows.get(key)
        if old == cells:
            return
        self._rows[key] = cells
        if old is None:
            self.add_row(*cells, key=key)
            self._say_hidden()
            if self._sort_by is not None and len(self._rows) > 1:
                column, order, reverse = self._sort_by
                self.sort(column, key=order, reverse=reverse)
            return
        for col, before, after in zip(self._column_keys, old, cells):
            if before != after:
                # Grow a column for a wider cell, never shrink it: shrinking makes DataTable measure every cell
                # of the column again, per update, which under a storm of price and fill updates is most of the
                # screen's work.
                self.update_cell(key, col, after, update_width=after.cell_len > self.columns[col].content_width)

    def discard(self, key: str) -> None:
        """Remove one row if it is there."""
        if self._rows.pop(key, None) is not None:
            try:
                self.remove_row(key)
            except RowDoesNotExist:
                pass
            self._say_hidden()

    def on_resize(self) -> None:
        self._say_hidden()

    def _say_hidden(self) -> None:
        if self._count_as is None or not self.size.height:
            return
        hidden = len(self._rows) - max(0, self.size.height - 1)  # under the header
        self.border_subtitle = f"{len(self._rows)} {self._count_as} · ↓ {hidden} more" if hidden > 0 else ""

    def order(self, keys: Sequence[str]) -> None:
        """Show the rows in the order of ``keys`` (rows not named keep their place after them); nothing is redrawn
        when they are in that order already. The first column's cells must name their rows (a symbol)."""
        rank = {key: i for i, key in enumerate(keys)}
        current = sorted(self._rows, key=self.get_row_index)
        wanted = sorted(current, key=lambda key: rank.get(key, len(rank)))
        if current == wanted:
            return
        place = {_plain(self._rows[key][0]): rank.get(key, len(rank)) for key in current}
        self.sort(self._column_keys[0], key=lambda cell: place.get(_plain(cell), len(rank)))

    def clear_rows(self) -> None:
        """Every row removed (the columns stay)."""
        self._rows.clear()
        self.clear()

    def row_cells(self, key: str) -> tuple[Cell, ...] | None:
        return self._rows.get(key)

    @property
    def keys(self) -> list[str]:
        return list(self._rows)

    @property
    def selected_key(self) -> str | None:
        """The row key under the cursor, if any."""
        if not self._rows or not (0 <= self.cursor_row < self.row_count):
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key((self.cursor_row, 0))
        except Exception:
            return None
        return row_key.value


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)
