"""A DataTable kept in sync with a mapping of row key -> cells: cells update in place, never a rebuild."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from itertools import count
from typing import Any

from rich.text import Text
from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowDoesNotExist, RowKey

Cell = str | Text
_version = count(1)  # every change of any row's cells takes the next: a version is never given twice


class _RowCache(LRUCache[Any, Any]):
    """One of DataTable's render caches, which also knows which of its entries belong to which row, so that one
    row's entries can be dropped (``drop``) when that row's cells change, and the others kept. DataTable itself
    keys every entry by a count of updates that any cell update moves on: after one price, every row in view was
    rendered again, and the cost of a ticker grew with the rows shown and the rows listed."""

    def __init__(self, maxsize: int, row_of: Callable[[Any], Hashable | None]) -> None:
        super().__init__(maxsize)
        self._row_of = row_of
        self._by_row: dict[Hashable, set[Any]] = {}

    def set(self, key: Any, value: Any) -> None:
        super().set(key, value)
        row = self._row_of(key)
        if row is not None:
            self._by_row.setdefault(row, set()).add(key)
            if len(self._by_row[row]) > 64:  # entries the LRU let go of (or of older update counts)
                self._by_row[row] = {k for k in self._by_row[row] if k in self}

    __setitem__ = set

    def drop(self, row: Hashable) -> None:
        for key in self._by_row.pop(row, ()):
            self.discard(key)

    def clear(self) -> None:
        super().clear()
        self._by_row.clear()


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
        # DataTable's render caches, each entry filed under its row (see ``_RowCache``): by row key for a cell and a
        # row's lines, by row index for a row's renderables, by the row a line of the table shows for a line.
        self._cell_render_cache = _RowCache(10000, lambda key: key[0])
        self._row_render_cache = _RowCache(1000, lambda key: key[0])
        self._row_renderable_cache = _RowCache(1000, lambda key: key[1])
        self._line_cache = _RowCache(1000, self._row_at_line)
        # A row's rendered line by what it shows (its cells' version, place, widths and highlight), kept across
        # DataTable's update count: a sort, a row added or removed, or a resize moves that count on, and every row
        # in view was rendered again, cell by cell through Rich (~1 ms a cell); now only the rows that changed or
        # moved are.
        self._versions: dict[str, int] = {}
        # The same for a cell (by the cell's own version): a row whose one cell changed renders that cell alone.
        self._cell_versions: dict[str, tuple[int, ...]] = {}
        self._shown_cells: LRUCache[Hashable, Any] = LRUCache(10000)
        self._shown_rows: LRUCache[Hashable, Any] = LRUCache(2000)

    def _render_line_in_row(
        self,
        row_key: RowKey,
        line_no: int,
        base_style: Any,
        cursor_location: Any,
        hover_location: Any,
    ) -> Any:
        if self.cursor_type != "row":  # the key below says what a row cursor highlights, no more
            return super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
        row_index = self._row_locations.get(row_key)
        index = -1 if row_index is None else row_index
        shown_key = (
            row_key,
            self._versions.get(row_key.value, 0) if row_key.value is not None else 0,
            index,
            line_no,
            base_style,
            cursor_location.row == index,
            hover_location.row == (index or 0),
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
            self.size.width,
            self._row_label_column_width,
            tuple(column.get_render_width(self) for column in self.ordered_columns),
        )
        shown = self._shown_rows.get(shown_key)
        if shown is None:
            shown = super()._render_line_in_row(row_key, line_no, base_style, cursor_location, hover_location)
            self._shown_rows[shown_key] = shown
        return shown

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Any,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> Any:
        row_key = self._row_locations.get_key(row_index) if row_index >= 0 else None
        versions = self._cell_versions.get(row_key.value) if row_key is not None and row_key.value else None
        if versions is None or not 0 <= column_index < len(versions):  # the header, a label: DataTable's own
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        shown_key = (
            versions[column_index],
            row_index,
            column_index,
            base_style,
            width,
            cursor,
            hover,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
            self.cell_padding,
        )
        shown = self._shown_cells.get(shown_key)
        if shown is None:
            shown = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._shown_cells[shown_key] = shown
        return shown

    def _clear_caches(self) -> None:
        super()._clear_caches()
        if hasattr(self, "_shown_rows"):
            self._shown_rows.clear()
            self._shown_cells.clear()

    def notify_style_update(self) -> None:
        if hasattr(self, "_shown_rows"):  # before DataTable's refresh: the theme or a class changed the colours
            self._shown_rows.clear()
            self._shown_cells.clear()
        super().notify_style_update()

    def _row_at_line(self, key: Any) -> Hashable | None:
        try:
            return self._get_offsets(key[0])[0]
        except LookupError:
            return None

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
        self._versions[key] = next(_version)
        prior = self._cell_versions.get(key)
        self._cell_versions[key] = tuple(
            prior[i] if prior is not None and old is not None and old[i] == cell else next(_version)
            for i, cell in enumerate(cells)
        )
        if old is None:
            self.add_row(*cells, key=key)
            self._say_hidden()
            if self._sort_by is not None and len(self._rows) > 1:
                column, order, reverse = self._sort_by
                self.sort(column, key=order, reverse=reverse)
            return
        changed = [(col, after) for col, before, after in zip(self._column_keys, old, cells) if before != after]
        # Grow a column for a wider cell, never shrink it: shrinking makes DataTable measure every cell of the
        # column again, per update, which under a storm of price and fill updates is most of the screen's work.
        if any(after.cell_len > self.columns[col].content_width for col, after in changed):
            for col, after in changed:
                self.update_cell(key, col, after, update_width=after.cell_len > self.columns[col].content_width)
            return
        self._update_row_in_place(key, changed)

    def _update_row_in_place(self, key: str, changed: Sequence[tuple[ColumnKey, Text]]) -> None:
        """The changed cells of one row, with no column wider: only that row's rendering is dropped and only its
        line redrawn (and not at all when it is out of sight). ``update_cell`` would move DataTable's update count
        on, which throws away every row's rendering and redraws the whole table; under 100 markets' tickers and
        200 orders' ages that was most of the screen's work, and it grew with the rows (decision SCALE-08)."""
        row_key = RowKey(key)
        for col, after in changed:
            self._data[row_key][col] = after
        row_index = self._row_locations.get(row_key)
        for cache in (self._cell_render_cache, self._row_render_cache, self._line_cache):
            cache.drop(row_key)  # type: ignore[attr-defined]
        self._row_renderable_cache.drop(row_index)  # type: ignore[attr-defined]
        if row_index is not None:
            self.refresh_row(row_index)

    def discard(self, key: str) -> None:
        """Remove one row if it is there."""
        if self._rows.pop(key, None) is not None:
            self._versions.pop(key, None)  # a row of this key again takes a new version: its old lines unused
            self._cell_versions.pop(key, None)
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
        self._cell_versions.clear()
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
