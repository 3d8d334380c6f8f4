"""The alert list: newest first, severity in colour and in words (colour may not survive an SSH session)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from widgets.keyed_table import Cell, KeyedTable

SEVERITY_STYLE = {"INFO": "cyan", "WARN": "bold yellow", "CRIT": "bold white on red"}


@dataclass(frozen=True)
class AlertRow:
    """One alert as the widget shows it."""

    time: str
    severity: str
    code: str
    message: str
    id: int = 0
    count: int = 1
    acked: bool = False


def severity_text(severity: str, acked: bool = False) -> Text:
    """``CRIT`` on red, ``WARN`` in yellow; an acknowledged one dimmed with a tick (the word survives NO_COLOR)."""
    return Text(severity + ("✓" if acked else ""), style="dim" if acked else SEVERITY_STYLE.get(severity, ""))


def _id_order(cell: Cell) -> int:
    text = cell.plain if isinstance(cell, Text) else cell
    return int(text) if text.isdigit() else 0


class AlertList(KeyedTable):
    """The latest ``limit`` alerts, newest on top. A new alert adds one row; a repeat or an acknowledgement
    updates the cells of its row: the list is never rebuilt."""

    DEFAULT_CSS = """
    AlertList { height: 1fr; }
    """

    def __init__(self, limit: int = 200, **kwargs) -> None:
        super().__init__(("#", "time", "sev", "code", "message"), sort_by=("#", _id_order, True), **kwargs)
        self.limit = limit
        self._alerts: dict[str, AlertRow] = {}
        self._serial = 0  # for alerts without an id (none from the engine; kept safe)

    def add_alert(self, alert: AlertRow) -> None:
        """A new alert on top, or an alert shown already (same id) updated in place: counted, acknowledged."""
        if alert.id:
            key = str(alert.id)
        else:
            self._serial -= 1
            key = str(self._serial)
        self._alerts[key] = alert
        code = alert.code + (f" x{alert.count}" if alert.count > 1 else "")
        self.upsert(
            key,
            (
                str(alert.id) if alert.id else "",
                alert.time,
                severity_text(alert.severity, alert.acked),
                code,
                alert.message,
            ),
        )
        if len(self._alerts) > self.limit:
            oldest = min(self._alerts, key=lambda k: int(k) if int(k) > 0 else -1)
            del self._alerts[oldest]
            self.discard(oldest)

    def clear_rows(self) -> None:
        self._alerts.clear()
        super().clear_rows()

    @property
    def selected_id(self) -> int | None:
        """The id of the alert under the cursor, if any."""
        key = self.selected_key
        return int(key) if key is not None and int(key) > 0 else None

    @property
    def alerts(self) -> list[AlertRow]:
        """Newest first, as shown."""
        return sorted(self._alerts.values(), key=lambda a: a.id, reverse=True)
