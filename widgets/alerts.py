"""The alert list: newest first, severity in colour and in words (colour may not survive an SSH session)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

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


class AlertList(DataTable):
    """Keeps the latest ``limit`` alerts, newest on top."""

    DEFAULT_CSS = """
    AlertList { height: 1fr; }
    """

    def __init__(self, limit: int = 200, **kwargs) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.limit = limit
        self._alerts: list[AlertRow] = []

    def on_mount(self) -> None:
        self.add_columns("time", "sev", "code", "message")

    def add_alert(self, alert: AlertRow) -> None:
        """A new alert on top, or an alert shown already (same id) updated in place: counted, acknowledged."""
        for i, shown in enumerate(self._alerts):
            if alert.id and shown.id == alert.id:
                self._alerts[i] = alert
                break
        else:
            self._alerts.insert(0, alert)
            del self._alerts[self.limit :]
        self.clear()
        for a in self._alerts:
            code = a.code + (f" x{a.count}" if a.count > 1 else "")
            style = "dim" if a.acked else SEVERITY_STYLE.get(a.severity, "")
            sev = a.severity + ("✓" if a.acked else "")
            self.add_row(a.time, Text(sev, style=style), code, a.message)

    @property
    def selected_id(self) -> int | None:
        """The id of the alert under the cursor, if any."""
        if not self._alerts or self.cursor_row < 0 or self.cursor_row >= len(self._alerts):
            return None
        return self._alerts[self.cursor_row].id or None

    @property
    def alerts(self) -> list[AlertRow]:
        return list(self._alerts)
