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
        self._alerts.insert(0, alert)
        del self._alerts[self.limit :]
        self.clear()
        for a in self._alerts:
            self.add_row(a.time, Text(a.severity, style=SEVERITY_STYLE.get(a.severity, "")), a.code, a.message)

    @property
    def alerts(self) -> list[AlertRow]:
        return list(self._alerts)
