"""``cockpit status``: what the store says, readable by an operator or (with --json) by a script."""

from __future__ import annotations

import json
import sys

from engine.config import Settings
from engine.datadir import engine_pid
from engine.store import DB_NAME, Store


def print_status(settings: Settings, as_json: bool = False) -> int:
    data_dir = settings.engine.data_dir
    if not (data_dir / DB_NAME).exists():
        print(f"no cockpit store in {data_dir}: nothing has run there (use --data-dir DIR)", file=sys.stderr)
        return 1
    store = Store.in_dir(data_dir)
    try:
        state, info = store.trading_state()
        orders = store.orders(open_only=True)
        alerts = store.alerts(limit=5)
    finally:
        store.close()
    pid = engine_pid(data_dir)
    if as_json:
        print(json.dumps({
            "data_dir": str(data_dir), "engine_pid": pid, "mode": settings.engine.mode,
            "trading_state": state.value, "state_changed": info,
            "open_orders": [{"client_id": o.client_id, "symbol": o.symbol, "side": o.side,
                             "price": str(o.price) if o.price is not None else None, "amount": str(o.amount),
                             "filled": str(o.filled), "status": o.status.value} for o in orders],
            "alerts": alerts,
        }))
        return 0
    print(f"engine: {'running (pid ' + pid + ')' if pid else 'not running'} on {data_dir}")
    line = f"trading: {settings.engine.mode.upper()} · {state.value}"
    if info:
        line += f" (by {info['actor']} at {info['ts']}: {info['reason']})"
    print(line)
    print(f"open orders: {len(orders)}")
    for o in orders:
        print(f"  {o.symbol} {o.side} {o.amount} @ {o.price if o.price is not None else 'market'} "
              f"filled {o.filled} {o.status.value} {o.client_id}")
    print("latest alerts:" if alerts else "latest alerts: none")
    for a in alerts:
        print(f"  {a['ts'][:19]} {a['severity']} {a['code']}: {a['message']}")
    return 0
