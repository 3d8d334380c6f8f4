"""How records become rows and rows records: every Decimal is stored as TEXT (no amount ever passes through a
float), JSON fields with Decimals as strings, timestamps in ISO 8601."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.kernel.events import Alert, Fill, Order, OrderStatus, Severity


def to_text(value: Decimal | None) -> str | None:
    """A Decimal as the TEXT the store keeps (None stays NULL)."""
    return None if value is None else str(value)


def to_decimal(value: str | None) -> Decimal | None:
    """A stored TEXT amount back as a Decimal (NULL stays None)."""
    return None if value is None else Decimal(value)


def dumps(value: Any) -> str:
    """JSON for log lines and snapshots, with Decimals as strings."""
    return json.dumps(value, default=str, sort_keys=True)


def order_from_row(r: dict[str, Any]) -> Order:
    """A stored order as the record the order book restores."""
    return Order(
        client_id=r["client_id"],
        symbol=r["symbol"],
        side=r["side"],
        type=r["type"],
        amount=Decimal(r["amount"]),
        price=to_decimal(r["price"]),
        status=OrderStatus(r["status"]),
        filled=Decimal(r["filled"]),
        average=to_decimal(r["average"]),
        venue_id=r["venue_id"],
        created_at=datetime.fromisoformat(r["created_at"]),
        updated_at=datetime.fromisoformat(r["updated_at"]),
        origin=r["origin"],
    )


def alert_from_row(r: dict[str, Any]) -> Alert:
    """A stored alert as the record the alert book keeps."""
    return Alert(
        Severity(r["severity"]),
        r["code"],
        r["message"],
        ts=datetime.fromisoformat(r["ts"]),
        values=json.loads(r.get("values") or "{}"),
        id=r["id"],
        count=r.get("count") or 1,
        last_ts=datetime.fromisoformat(r["last_ts"]) if r.get("last_ts") else None,
        acked_by=r.get("acked_by"),
        acked_at=datetime.fromisoformat(r["acked_at"]) if r.get("acked_at") else None,
        escalated=bool(r.get("escalated")),
    )


def fill_from_row(r: dict[str, Any]) -> Fill:
    """A stored fill as the record the portfolio replays at start."""
    return Fill(
        trade_id=r["trade_id"],
        client_id=r["client_id"],
        symbol=r["symbol"],
        side=r["side"],
        price=Decimal(r["price"]),
        amount=Decimal(r["amount"]),
        fee=Decimal(r["fee"]),
        fee_asset=r["fee_asset"],
        ts=datetime.fromisoformat(r["ts"]),
    )
