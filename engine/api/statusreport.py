"""``cockpit status``'s report: one JSON object (what ``cockpit status --json`` prints), from the store and the
running engine's beacon.

Built in one place for both ways of asking: by the CLI from the store when no engine runs, and by the engine
itself (the service's ``status_report`` query, read from its own store in a thread) when one does, so the command
from a second shell answers without importing the store's or the settings' machinery and prints the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.api import beacon
from engine.kernel.events import Order, TradingState, utcnow
from engine.store.db import Store


def status_report(
    store: Store,
    data_dir: Path,
    pid: str | None,
    default_mode: str,
    chat: Sequence[str] = (),
    symbols: Sequence[str] = (),
) -> dict[str, Any]:
    """What the store in ``data_dir`` says, the running engine's beacon believed over it (when the store cannot
    be written, the engine is HALTED in memory while the store says what it last could record). ``chat``: the
    chat bots configured; they run inside the engine, so with none running each is off. ``symbols``: the markets
    configured, whose positions the report lists with their stops."""
    state, info = store.trading_state()
    orders = store.orders(open_only=True)
    alerts = store.alerts(limit=5)
    today = store.load_day(utcnow().date().isoformat())
    guard = store.load_json("strategy_guard") or {}
    curve = store.equity_curve(limit=1)
    engine_info = store.load_json("engine") or {}
    monitors = store.load_json("monitors") or []
    holdings = store.load_json("holdings") or {}
    mode = engine_info.get("mode", default_mode)  # what the engine last ran with, not this shell's config
    seen = beacon.read(data_dir) if pid else None
    store_failure = None
    bots = [{"name": name, "state": "off", "last_command_at": None} for name in chat]
    if seen and seen.get("running") and str(seen.get("pid")) == pid:
        store_failure = seen.get("store_failure")
        if isinstance(seen.get("chat"), list):
            bots = [
                {"name": b.get("name"), "state": b.get("state"), "last_command_at": b.get("last_command_at")}
                for b in seen["chat"]
                if isinstance(b, dict)
            ]
        if seen.get("state") and seen["state"] != state.value:
            state = TradingState(seen["state"])
            info = {k: seen.get(k) for k in ("actor", "reason")} | {"ts": seen.get("since"), "code": ""}
        mode = seen.get("mode") or mode
    return {
        "data_dir": str(data_dir),
        "engine_pid": pid,
        "mode": mode,
        "trading_state": state.value,
        "state_changed": info,
        "store_failure": store_failure,
        "open_orders": [
            {
                "client_id": o.client_id,
                "symbol": o.symbol,
                "side": o.side,
                "price": str(o.price) if o.price is not None else None,
                "amount": str(o.amount),
                "filled": str(o.filled),
                "status": o.status.value,
            }
            for o in orders
        ],
        "alerts": alerts,
        "today": today,
        "strategies": guard,
        "equity": curve[-1] if curve else None,
        "tripped_by": (
            {
                "code": info.get("code"),
                "actor": info.get("actor"),
                "values": info.get("values"),
                "reason": info.get("reason"),
                "ts": info.get("ts"),
            }
            if state.value != "ACTIVE" and info.get("code")
            else None
        ),
        "monitors": monitors,
        "position_mismatch": holdings.get("mismatch", []),
        "chat": bots,
        "positions": _positions(store, symbols, orders),
        # Why the protective orders at the venue are suspended (a cancel-all with its stops, a close-all) until an
        # operator resumes; None when they are kept.
        "stops_suspended": store.load_json("stops_suspended") or None,
    }


def _positions(store: Store, symbols: Sequence[str], open_orders: list[Order]) -> list[dict[str, object]]:
    """What the store last knew held, per configured symbol, with its stop and whether the stop rests at the
    venue (the engine's protective stop among the open orders) or in the engine only, and its take-profit (the
    OCO's other leg at the venue, when the entry gave one)."""
    stops = store.load_json("stops") or {}
    perps = store.load_json("perp_positions")
    if isinstance(perps, list):
        # Perps ([venue] market = "usdm"): the venue's positions as the engine last read them, signed, each with
        # its side, leverage, liquidation price and distance (engine.trading.execution.perp_record).
        # Its stop, and whether it rests at the venue (a stop-market closing the position, decision PERP-07).
        rows = []
        for p in perps:
            if isinstance(p, dict) and (not symbols or p.get("symbol") in symbols):
                at_venue = [o for o in open_orders if o.symbol == p.get("symbol") and o.is_protective_stop]
                rows.append(
                    {
                        **p,
                        "stop_price": stops.get(p.get("symbol")),
                        "stop_at_venue": bool(at_venue),
                        "stop_order": at_venue[0].client_id if at_venue else None,
                    }
                )
        return rows
    held = {b.asset: b.total for b in store.balances()}
    profits = store.load_json("take_profits") or {}
    out: list[dict[str, object]] = []
    for symbol in symbols:
        amount = held.get(symbol.split("/")[0], Decimal(0))
        if amount <= 0:
            continue
        at_venue = [o for o in open_orders if o.symbol == symbol and o.is_protective_stop]
        profit_leg = [o for o in open_orders if o.symbol == symbol and o.is_take_profit_leg]
        out.append(
            {
                "symbol": symbol,
                "amount": str(amount),
                "stop_price": stops.get(symbol),
                "stop_at_venue": bool(at_venue),
                "stop_order": at_venue[0].client_id if at_venue else None,
                "take_profit_price": profits.get(symbol),
                "take_profit_order": profit_leg[0].client_id if profit_leg else None,
            }
        )
    return out
