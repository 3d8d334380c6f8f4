"""A DataTable kept in sync with a mapping of row key -> cells: cells update in place, never a rebuild."""

from __future__ import annotations

from typing import Mapping, Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

Cell = str | Text


class KeyedTable(DataTable):
    """Rows addressed by a stable key. ``sync`` adds, updates and removes rows to match what it is given."""

    DEFAULT_CSS = """
    KeyedTable { height: 1fr; }
    """

    def __init__(self, columns: Sequence[str], **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._column_labels = tuple(columns)
        self._column_keys: list = []
        self._rows: dict[str, tuple[Cell, ...]] = {}

    def on_mount(self) -> None:
        self._column_keys = [self.add_column(label, key=label) for label in self._column_labels]

    def sync(self, rows: Mapping[str, Sequence[Cell]]) -> None:
        """Make the table show exactly ``rows`` (in their order for new rows)."""
        if not self._column_keys:
            self._column_keys = [self.add_column(label, key=label) for label in self._column_labels]
        for key in list(self._rows):
            if key not in rows:
                try:
                    self.remove_row(key)
                except RowDoesNotExist:
                    pass
                del self._rows[key]
        for key, cells in rows.items():
            cells = tuple(cells)
            old = self._rows.get(key)
            if old is None:
                self.add_row(*cells, key=key)
            elif old != cells:
                for col, (before, after) in zip(self._column_keys, zip(old, cells)):
                    if before != after:
                        self.update_cell(key, col, after, update_width=True)
            self._rows[key] = cells

    def upsert(self, key: str, cells: Sequence[Cell]) -> None:
        """Add or update one row, leaving the others alone."""
        self.sync({**self._rows, key: tuple(cells)})

    def discard(self, key: str) -> None:
        """Remove one row if it is there."""
        if key in self._rows:
            self.sync({k: v for k, v in self._rows.items() if k != key})

    def row_cells(self, key: str) -> tuple[Cell, ...] | None:
        return self._rows.get(key)

    @property
    def keys(self) -> list[str]:
        return list(self._rows)
